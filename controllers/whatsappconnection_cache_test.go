//go:build !unit

package controllers

import (
	"fmt"
	"net/http"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// The cache keeps of each object only what the controller reads (whatsappconnection_cache.go).
// A field it dropped but a pass compares would look drifted on every pass (a write each time);
// a repair written from the trimmed copy would delete what the copy lacks (its labels, and the
// object would leave the cache). These specs catch both.
var _ = Describe("trimmed cache copies", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	// objectsOf names every object the controller makes for a resource called name (sqlite
	// store, the default), the session ClusterRoleBinding included.
	objectsOf := func(name string) []client.Object {
		named := func(obj client.Object, name string) client.Object {
			obj.SetNamespace(ns)
			obj.SetName(name)
			return obj
		}
		return []client.Object{
			named(&corev1.ServiceAccount{}, name+"-session"),
			named(&rbacv1.Role{}, name+"-session"),
			named(&rbacv1.RoleBinding{}, name+"-session"),
			named(&networkingv1.NetworkPolicy{}, name+"-session"),
			named(&corev1.PersistentVolumeClaim{}, name+"-store"),
			named(&coordinationv1.Lease{}, name+"-session"),
			named(&corev1.Pod{}, name+"-session"),
			named(&corev1.Service{}, name+"-session"),
			&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "whatsapp-session:" + ns + ":" + name}},
		}
	}
	versionsOf := func(name string) map[string]string {
		out := map[string]string{}
		for _, obj := range objectsOf(name) {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
			out[fmt.Sprintf("%T %s %s", obj, obj.GetName(), obj.GetUID())] = obj.GetResourceVersion()
		}
		return out
	}
	// passDone makes the controller run a whole pass over the resource and waits for its end:
	// a new reconnect token is echoed by the status write that ends the pass.
	passDone := func(name, token string) {
		requestReconnect(ns, name, token)
		Eventually(func() string { return get(ns, name).Status.LastHandledReconnectAt }).Should(Equal(token))
	}

	It("a pass over a settled resource makes no request for its objects: no write, no read around the cache", func() {
		// A manager of its own, whose every request to the API server is recorded.
		var (
			mu       sync.Mutex
			requests []string
		)
		label := otherManager("steady-"+ns, func(m *managerSetup) {
			m.Config = rest.CopyConfig(cfg)
			m.Config.Wrap(func(rt http.RoundTripper) http.RoundTripper {
				return roundTripFunc(func(req *http.Request) (*http.Response, error) {
					// The resource's own objects, not its status write (the end of every pass).
					if (strings.Contains(req.URL.Path, "/namespaces/"+ns+"/") || strings.Contains(req.URL.Path, ":"+ns+":")) &&
						!strings.Contains(req.URL.Path, "/whatsappconnections/") {
						mu.Lock()
						requests = append(requests, req.Method+" "+req.URL.Path)
						mu.Unlock()
					}
					return rt.RoundTrip(req)
				})
			})
		})
		newConnection(ns, "calm", label)
		for _, obj := range objectsOf("calm") {
			Eventually(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj) }).Should(Succeed())
		}
		passDone("calm", "t0")
		settled := versionsOf("calm")
		mu.Lock()
		Expect(requests).NotTo(BeEmpty(), "the recorder sees the manager's requests (it created the objects)")
		requests = nil
		mu.Unlock()

		passDone("calm", "t1")
		passDone("calm", "t2")
		mu.Lock()
		defer mu.Unlock()
		Expect(requests).To(BeEmpty())
		Expect(versionsOf("calm")).To(Equal(settled))
	})

	// driftAndRepair makes the change to obj (a user's edit, which also adds an annotation the
	// cache does not keep), waits until repaired says the controller put it back, and checks
	// that the repair changed nothing else: labels and that annotation are still there.
	driftAndRepair := func(obj client.Object, change func(), repaired func() bool) {
		key := client.ObjectKeyFromObject(obj)
		Eventually(func() error { return k8sClient.Get(ctx, key, obj) }).Should(Succeed())
		labels := obj.GetLabels()
		Expect(labels).To(HaveKey(whatsappv1alpha1.ConnectionLabel))
		Eventually(func() error {
			if err := k8sClient.Get(ctx, key, obj); err != nil {
				return err
			}
			change()
			annotations := obj.GetAnnotations()
			if annotations == nil {
				annotations = map[string]string{}
			}
			annotations["example.com/note"] = "kept"
			obj.SetAnnotations(annotations)
			return k8sClient.Update(ctx, obj)
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, key, obj)).To(Succeed())
			g.Expect(repaired()).To(BeTrue(), "put back")
		}).Should(Succeed())
		Expect(obj.GetLabels()).To(Equal(labels))
		Expect(obj.GetAnnotations()).To(HaveKeyWithValue("example.com/note", "kept"))
		Expect(condition(ns, "drift", whatsappv1alpha1.ConditionConflict)().Status).NotTo(Equal(metav1.ConditionTrue))
	}

	It("puts back a Role's rules, a RoleBinding's subjects, the Service's selector and ports, the NetworkPolicy and the ClusterRoleBinding's subjects, and nothing else", func() {
		wac := newConnection(ns, "drift")
		sa := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "drift-session", Namespace: ns}
		intruder := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "intruder", Namespace: ns}

		By("Role")
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "drift-session"}}
		driftAndRepair(role, func() {
			role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}})
		}, func() bool { return equality.Semantic.DeepEqual(role.Rules, sessionRules(wac)) })

		By("RoleBinding")
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "drift-session"}}
		driftAndRepair(rb, func() { rb.Subjects = append(rb.Subjects, intruder) },
			func() bool { return equality.Semantic.DeepEqual(rb.Subjects, []rbacv1.Subject{sa}) })

		By("Service")
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "drift-session"}}
		driftAndRepair(svc, func() {
			svc.Spec.Selector = map[string]string{"app": "someone-else"}
			svc.Spec.Ports[0].TargetPort = intstr.FromInt32(9999)
		}, func() bool {
			return equality.Semantic.DeepEqual(svc.Spec.Selector, sessionSelector(wac)) &&
				len(svc.Spec.Ports) == 1 && svc.Spec.Ports[0].TargetPort == intstr.FromInt32(8090)
		})
		Expect(svc.Spec.ClusterIP).NotTo(BeEmpty(), "the Service keeps its address")

		By("NetworkPolicy")
		policy := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "drift-session"}}
		driftAndRepair(policy, func() { policy.Spec.Ingress[0].From = nil },
			func() bool { return equality.Semantic.DeepEqual(policy.Spec, desiredSessionNetworkPolicy(wac).Spec) })

		By("ClusterRoleBinding")
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "whatsapp-session:" + ns + ":drift"}}
		driftAndRepair(crb, func() { crb.Subjects = []rbacv1.Subject{intruder} },
			func() bool { return equality.Semantic.DeepEqual(crb.Subjects, []rbacv1.Subject{sa}) })
		Expect(crb.Annotations).To(HaveKeyWithValue(ownerAnnotation, ownerValue(get(ns, "drift"))))
	})
})

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
