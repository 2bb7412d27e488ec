//go:build !unit

package controllers

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

var _ = Describe("namespace-scoped manager (--watch-namespaces)", func() {
	It("runs sessions in its namespace with only a Role there, and leaves other namespaces alone", func() {
		ns, elsewhere := newNamespace(), newNamespace()
		// The manager's generated rules (config/rbac/role.yaml), granted by a Role in ns only, as
		// config/namespaced and the chart's watchNamespaces do.
		raw, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var generated rbacv1.ClusterRole
		Expect(yaml.Unmarshal(raw, &generated)).To(Succeed())
		const user = "scoped-manager"
		Expect(k8sClient.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Rules: generated.Rules})).To(Succeed())
		Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
		})).To(Succeed())

		scoped := otherManager("scoped", func(m *managerSetup) {
			m.Cache = CacheOptions(ns)
			// As config/namespaced and the chart: a Roles-only manager cannot watch Nodes.
			m.Options.LostNodeRecovery = false
			m.Config = rest.CopyConfig(cfg)
			m.Config.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
		})
		newConnection(ns, "inside", scoped)
		newConnection(elsewhere, "outside", scoped)

		pod := sessionPod(ns, "inside")
		Expect(pod.OwnerReferences).To(HaveLen(1))
		Eventually(phaseOf(ns, "inside")).Should(Equal(whatsappv1alpha1.PhasePending))
		Consistently(func() []string { return get(elsewhere, "outside").Finalizers }, 2*time.Second).Should(BeEmpty())
		Expect(podUID(elsewhere, "outside")()).To(BeEmpty())
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: elsewhere, Name: "outside-session"}, &rbacv1.Role{})).NotTo(Succeed())
	})
})
