//go:build !unit

package controllers

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

var _ = Describe("session RBAC", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mine"}, StringData: map[string]string{"dsn": "postgres://x"}})).To(Succeed())
		newConnection(ns, "me", func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Spec.Store.Postgres = &whatsappv1alpha1.PostgresStore{SecretRef: whatsappv1alpha1.SecretKeyRef{Name: "mine"}}
		})
		newConnection(ns, "neighbour")
		for _, obj := range []client.Object{&rbacv1.Role{}, &rbacv1.RoleBinding{}} {
			Eventually(func() error { return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "me-session"}, obj) }).Should(Succeed())
		}
	})

	// can asks the API server's authorizer whether the session's ServiceAccount may do it.
	can := func(verb, group, resource, subresource, name string) bool {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   "system:serviceaccount:" + ns + ":me-session",
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: verb, Group: group, Resource: resource, Subresource: subresource, Name: name,
			},
		}}
		Expect(k8sClient.Create(ctx, sar)).To(Succeed())
		return sar.Status.Allowed
	}

	const wa = "whatsapp.waoperator.io"
	DescribeTable("the session's ServiceAccount can do exactly what its Role lists",
		func(verb, group, resource, subresource, name string, allowed bool) {
			Eventually(func() bool { return can(verb, group, resource, subresource, name) }).Should(Equal(allowed))
		},
		Entry("get its own resource", "get", wa, "whatsappconnections", "", "me", true),
		Entry("watch its own resource", "watch", wa, "whatsappconnections", "", "me", true),
		Entry("patch its own status", "patch", wa, "whatsappconnections", "status", "me", true),
		Entry("get its own Lease", "get", "coordination.k8s.io", "leases", "", "me-session", true),
		Entry("update its own Lease", "update", "coordination.k8s.io", "leases", "", "me-session", true),

		Entry("not list resources", "list", wa, "whatsappconnections", "", "", false),
		Entry("not update its own spec", "update", wa, "whatsappconnections", "", "me", false),
		Entry("not patch its own spec", "patch", wa, "whatsappconnections", "", "me", false),
		Entry("not delete its own resource", "delete", wa, "whatsappconnections", "", "me", false),
		Entry("not get another resource", "get", wa, "whatsappconnections", "", "neighbour", false),
		Entry("not patch another resource's status", "patch", wa, "whatsappconnections", "status", "neighbour", false),
		Entry("not update another Lease", "update", "coordination.k8s.io", "leases", "", "neighbour-session", false),
		Entry("not create Leases", "create", "coordination.k8s.io", "leases", "", "", false),
		Entry("not delete its Lease", "delete", "coordination.k8s.io", "leases", "", "me-session", false),
		// The kubelet injects the DSN; the session needs no right on any Secret.
		Entry("not get its own store Secret", "get", "", "secrets", "", "mine", false),
		Entry("not get another Secret", "get", "", "secrets", "", "other", false),
		Entry("not list Secrets", "list", "", "secrets", "", "", false),
		Entry("not get Pods", "get", "", "pods", "", "me-session", false),
		Entry("not create Pods", "create", "", "pods", "", "", false),
		Entry("not update its Role", "update", "rbac.authorization.k8s.io", "roles", "", "me-session", false),
	)

	It("puts the Role's rules back when someone widens them", func() {
		role := &rbacv1.Role{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "me-session"}, role)).To(Succeed())
		role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"*"}})
		Expect(k8sClient.Update(ctx, role)).To(Succeed())
		Eventually(func() bool { return can("get", "", "pods", "", "me-session") }).Should(BeFalse())
	})
})
