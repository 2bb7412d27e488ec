//go:build !unit

package controllers

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// denyCreates makes the API server refuse creates of one kind for as long as the test runs
// (a ValidatingAdmissionPolicy, as a cluster's own policy would), limited to namespace ns, or,
// for a cluster-scoped kind, to the object named name. It returns once the refusal is in
// effect, and a function that lifts it.
func denyCreates(group, resource, ns, name string, probe client.Object) (lift func()) {
	GinkgoHelper()
	policyName := "deny-" + resource + "-" + ns
	if ns == "" {
		policyName = "deny-" + resource + "-" + strings.ReplaceAll(name, ":", "-")
	}
	expression := "false"
	var match *admissionregistrationv1.MatchResources
	if name != "" {
		expression = "object.metadata.name != '" + name + "'"
	} else {
		match = &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}}
	}
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: policyName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: []string{resource}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{Expression: expression, Message: "refused by the test"}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policyName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: policyName,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}, MatchResources: match},
	}
	Expect(k8sClient.Create(ctx, policy)).To(Succeed())
	Expect(k8sClient.Create(ctx, binding)).To(Succeed())
	lift = func() {
		_ = k8sClient.Delete(ctx, binding)
		_ = k8sClient.Delete(ctx, policy)
	}
	DeferCleanup(lift)
	// A policy takes effect a moment after it is created: a dry run says when.
	Eventually(func() error {
		p := probe.DeepCopyObject().(client.Object)
		return k8sClient.Create(ctx, p, client.DryRunAll)
	}).Should(MatchError(ContainSubstring("refused by the test")))
	return lift
}

var _ = Describe("the order of a pass", func() {
	It("never starts a session pod before the NetworkPolicy of its send API exists", func() {
		ns := newNamespace()
		lift := denyCreates("networking.k8s.io", "networkpolicies", ns, "", &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"}})
		newConnection(ns, "shop")

		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-session"}, &rbacv1.RoleBinding{})
		}).Should(Succeed(), "the pass runs up to the policy")
		Consistently(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-session"}, &corev1.Pod{}))
		}, 2*time.Second, 100*time.Millisecond).Should(BeTrue(), "no session pod without its NetworkPolicy")

		// A failed pass is retried with a growing backoff (the retry after two seconds of refusals
		// comes some seconds later).
		lift()
		pod := &corev1.Pod{}
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-session"}, pod)
		}).WithTimeout(30 * time.Second).Should(Succeed())
		policy := &networkingv1.NetworkPolicy{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-session"}, policy)).To(Succeed())
		Expect(policy.CreationTimestamp.Time).NotTo(BeTemporally(">", pod.CreationTimestamp.Time))
	})

	It("starts the session pod before the send API's Service and access reviews, which it does not need to start", func() {
		ns := newNamespace()
		bindingName := "whatsapp-session:" + ns + ":shop"
		lift := denyCreates("rbac.authorization.k8s.io", "clusterrolebindings", "", bindingName, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: bindingName},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"}})
		newConnection(ns, "shop")

		sessionPod(ns, "shop")
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-session"}, &corev1.Service{})
		}).Should(Succeed())
		Consistently(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Name: bindingName}, &rbacv1.ClusterRoleBinding{}))
		}, time.Second, 100*time.Millisecond).Should(BeTrue())

		By("granting the access reviews once they can be")
		lift()
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Name: bindingName}, &rbacv1.ClusterRoleBinding{})
		}).WithTimeout(30 * time.Second).Should(Succeed())
	})
})
