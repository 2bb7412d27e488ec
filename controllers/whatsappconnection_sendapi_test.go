//go:build !unit

package controllers

import (
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

var _ = Describe("send API objects", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("creates the Service and a NetworkPolicy that admits the API port from the namespace only", func() {
		wac := newConnection(ns, "shop")
		svc := &corev1.Service{}
		Eventually(func() error { return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-session"}, svc) }).Should(Succeed())
		Expect(metav1.IsControlledBy(svc, wac)).To(BeTrue())
		Expect(svc.Spec.Selector).To(HaveKeyWithValue("whatsapp.waoperator.io/connection", "shop"))
		Expect(svc.Spec.Ports).To(HaveLen(1))
		Expect(svc.Spec.Ports[0].Port).To(Equal(int32(80)))
		Expect(svc.Spec.Ports[0].TargetPort).To(Equal(intstr.FromInt32(8090)))

		policy := &networkingv1.NetworkPolicy{}
		Eventually(func() error { return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-session"}, policy) }).Should(Succeed())
		Expect(metav1.IsControlledBy(policy, wac)).To(BeTrue())
		Expect(policy.Spec.PodSelector.MatchLabels).To(Equal(svc.Spec.Selector))
		api := policy.Spec.Ingress[0]
		Expect(api.Ports[0].Port.IntValue()).To(Equal(8090))
		Expect(api.From).To(ConsistOf(networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}}),
			"pods of the connection's namespace, no namespaceSelector")

		By("narrowing a policy someone widened")
		policy.Spec.Ingress[0].From = nil
		Expect(k8sClient.Update(ctx, policy)).To(Succeed())
		Eventually(func() []networkingv1.NetworkPolicyPeer {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
			return policy.Spec.Ingress[0].From
		}).Should(HaveLen(1))
	})

	It("puts back a deleted Service while the session holds its Lease: a live session does not end the pass at its pod", func() {
		newConnection(ns, "shop")
		key := client.ObjectKey{Namespace: ns, Name: "shop-session"}
		svc := &corev1.Service{}
		Eventually(func() error { return k8sClient.Get(ctx, key, svc) }).Should(Succeed())
		pod := sessionPod(ns, "shop")
		before := passesOf(ns, "shop")()
		holdLease(ns, "shop", identityOf(pod), 60)
		// The Lease's new holder wakes the resource: once that pass ran, the cache has the holder.
		Eventually(passesOf(ns, "shop")).Should(BeNumerically(">", before))

		Expect(k8sClient.Delete(ctx, svc)).To(Succeed())
		Eventually(func() (string, error) {
			again := &corev1.Service{}
			err := k8sClient.Get(ctx, key, again)
			return string(again.UID), err
		}).Should(And(Not(BeEmpty()), Not(Equal(string(svc.UID)))))
	})

	It("passes spec.send to the session: its rate, and HTTPS with the Secret's certificate", func() {
		plain := sessionPod(ns, newConnection(ns, "plain").Name)
		Expect(plain.Spec.Containers[0].Args).NotTo(ContainElement(MatchRegexp("^--send-(rate|burst|api-tls)")), "no send flags without spec.send")
		Expect(plain.Spec.Containers[0].Args).To(ContainElement("--send-api-bind-address=:8090"))

		wac := newConnection(ns, "shop", func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Spec.Send = &whatsappv1alpha1.SendSpec{RatePerMinute: 120, Burst: 5, TLS: &whatsappv1alpha1.SendTLS{SecretName: "shop-api-tls"}}
		})
		pod := sessionPod(ns, wac.Name)
		c := pod.Spec.Containers[0]
		Expect(c.Args).To(ContainElements("--send-rate-per-minute=120", "--send-burst=5",
			"--send-api-tls-cert-file=/var/run/whatsapp/send-api-tls/tls.crt", "--send-api-tls-key-file=/var/run/whatsapp/send-api-tls/tls.key"))
		Expect(c.VolumeMounts).To(ContainElement(corev1.VolumeMount{Name: "send-api-tls", MountPath: "/var/run/whatsapp/send-api-tls", ReadOnly: true}))
		var secret *corev1.SecretVolumeSource
		for _, v := range pod.Spec.Volumes {
			if v.Name == "send-api-tls" {
				secret = v.Secret
			}
		}
		Expect(secret).NotTo(BeNil())
		Expect(secret.SecretName).To(Equal("shop-api-tls"))
		Expect(secret.Optional).To(BeNil(), "not optional: no plain HTTP for callers promised HTTPS")
		Expect(secret.Items).To(ConsistOf(corev1.KeyToPath{Key: "tls.crt", Path: "tls.crt"}, corev1.KeyToPath{Key: "tls.key", Path: "tls.key"}),
			"only the pair, not a ca.crt or anything else the Secret holds")

		By("refusing a rate above the bound at admission, with the field path")
		bad := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "too-fast"},
			Spec: whatsappv1alpha1.WhatsAppConnectionSpec{Send: &whatsappv1alpha1.SendSpec{RatePerMinute: 6001}}}
		Expect(k8sClient.Create(ctx, bad)).To(MatchError(ContainSubstring("spec.send.ratePerMinute")))
	})

	It("lets the session review tokens and access through system:auth-delegator, and removes that with the resource", func() {
		wac := newConnection(ns, "shop")
		crb := &rbacv1.ClusterRoleBinding{}
		name := "whatsapp-session:" + ns + ":shop"
		Eventually(func() error { return k8sClient.Get(ctx, client.ObjectKey{Name: name}, crb) }).Should(Succeed())
		Expect(crb.RoleRef.Name).To(Equal("system:auth-delegator"))
		Expect(crb.Subjects).To(ConsistOf(rbacv1.Subject{Kind: "ServiceAccount", Name: "shop-session", Namespace: ns}))

		can := func(group, resource string) bool {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               "system:serviceaccount:" + ns + ":shop-session",
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "create", Group: group, Resource: resource},
			}}
			Expect(k8sClient.Create(ctx, sar)).To(Succeed())
			return sar.Status.Allowed
		}
		Eventually(func() bool { return can("authentication.k8s.io", "tokenreviews") }).Should(BeTrue())
		Expect(can("authorization.k8s.io", "subjectaccessreviews")).To(BeTrue())

		By("deleting the resource")
		Expect(k8sClient.Delete(ctx, wac)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Name: name}, crb))
		}).Should(BeTrue(), "a cluster-scoped binding has no owner reference: the controller deletes it")
	})

	It("takes over the binding a deleted resource of the same name left behind, and refuses a foreign one", func() {
		stale := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "whatsapp-session:" + ns + ":shop",
				Annotations: map[string]string{"whatsapp.waoperator.io/owner": ns + "/shop/an-old-uid"}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "shop-session", Namespace: ns}},
		}
		Expect(k8sClient.Create(ctx, stale)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, stale) })
		wac := newConnection(ns, "shop")
		Eventually(func() string {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(stale), stale)).To(Succeed())
			return stale.Annotations["whatsapp.waoperator.io/owner"]
		}).Should(Equal(ns + "/shop/" + string(wac.UID)))

		foreign := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "whatsapp-session:" + ns + ":other"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "someone", Namespace: ns}},
		}
		Expect(k8sClient.Create(ctx, foreign)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, foreign) })
		other := newConnection(ns, "other")
		Eventually(func() string {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(other), other)).To(Succeed())
			if other.Status.Phase == "" {
				return ""
			}
			return string(other.Status.Phase)
		}).Should(Equal("Conflict"), "a binding this operator did not make is never rewritten")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(foreign), foreign)).To(Succeed())
		Expect(foreign.Subjects[0].Name).To(Equal("someone"))
	})

	It("binds system:auth-delegator with the manager's own role, which cannot bind anything more", func() {
		// The manager's generated ClusterRole, bound to a ServiceAccount the test impersonates.
		raw, err := os.ReadFile("../config/rbac/role.yaml")
		Expect(err).NotTo(HaveOccurred())
		role := &rbacv1.ClusterRole{}
		Expect(yaml.Unmarshal(raw, role)).To(Succeed())
		role.ObjectMeta = metav1.ObjectMeta{Name: "manager-under-test-" + ns}
		Expect(k8sClient.Create(ctx, role)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, role) })
		binding := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "manager", Namespace: ns}},
		}
		Expect(k8sClient.Create(ctx, binding)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, binding) })
		asManager := rest.CopyConfig(cfg)
		asManager.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":manager",
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
		mgr, err := client.New(asManager, client.Options{Scheme: k8sClient.Scheme()})
		Expect(err).NotTo(HaveOccurred())

		bind := func(roleName string) error {
			b := &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleName},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "someone", Namespace: ns}},
			}
			err := mgr.Create(ctx, b)
			if err == nil {
				DeferCleanup(func() { _ = k8sClient.Delete(ctx, b) })
			}
			return err
		}
		Eventually(func() error { return bind("system:auth-delegator") }).Should(Succeed())
		err = bind("cluster-admin")
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "no escalate or bind: got %v", err)
		Expect(role.Rules).NotTo(ContainElement(HaveField("Verbs", ContainElement(BeElementOf("bind", "escalate", "*")))))
	})
})
