//go:build !unit

package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var _ = Describe("session ClusterRoleBindings from the cache", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	// repairWithin is shorter than the wait before any later pass of a Pending resource (read
	// live, without the watch, the deleted binding was still missing after it): a repair this
	// fast comes from the watch of the binding, not from the next pass that happens to look.
	const repairWithin = 5 * time.Second

	binding := func(name string) func() (*rbacv1.ClusterRoleBinding, error) {
		return func() (*rbacv1.ClusterRoleBinding, error) {
			crb := &rbacv1.ClusterRoleBinding{}
			return crb, k8sClient.Get(ctx, client.ObjectKey{Name: name}, crb)
		}
	}

	It("puts back a deleted or edited binding as soon as it changes", func() {
		wac := newConnection(ns, "shop")
		name := "whatsapp-session:" + ns + ":shop"
		var crb *rbacv1.ClusterRoleBinding
		Eventually(func() error {
			var err error
			crb, err = binding(name)()
			return err
		}).Should(Succeed())
		Eventually(phaseOf(ns, wac.Name)).ShouldNot(BeEmpty())

		By("deleting it")
		Expect(k8sClient.Delete(ctx, crb)).To(Succeed())
		Eventually(func() types.UID {
			b, err := binding(name)()
			if err != nil {
				return ""
			}
			return b.UID
		}, repairWithin).ShouldNot(BeElementOf(types.UID(""), crb.UID), "a new binding")

		By("binding another ServiceAccount in it")
		crb, err := binding(name)()
		Expect(err).NotTo(HaveOccurred())
		crb.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "intruder", Namespace: ns}}
		Expect(k8sClient.Update(ctx, crb)).To(Succeed())
		Eventually(func() []rbacv1.Subject {
			b, err := binding(name)()
			Expect(err).NotTo(HaveOccurred())
			return b.Subjects
		}, repairWithin).Should(ConsistOf(rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "shop-session", Namespace: ns}))
	})

	It("holds the bindings the operator made, and no other ClusterRoleBinding", func() {
		Expect(mayWatchClusterRoleBindings(ctx, cfg)).To(BeTrue(), "the suite's admin may")
		opts := cache.Options{Scheme: scheme}
		cacheOwnBindings(&opts)
		c, err := cache.New(cfg, opts)
		Expect(err).NotTo(HaveOccurred())
		cacheCtx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		go func() {
			defer GinkgoRecover()
			Expect(c.Start(cacheCtx)).To(Succeed())
		}()

		foreign := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "someone-elses-" + ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "someone", Namespace: ns}},
		}
		Expect(k8sClient.Create(ctx, foreign)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, foreign) })
		newConnection(ns, "shop")
		name := "whatsapp-session:" + ns + ":shop"
		Eventually(func() error { return c.Get(ctx, client.ObjectKey{Name: name}, &rbacv1.ClusterRoleBinding{}) }).Should(Succeed())
		// The foreign binding was created first, so the cache has seen it if it were to hold it.
		err = c.Get(ctx, client.ObjectKeyFromObject(foreign), &rbacv1.ClusterRoleBinding{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "got %v", err)
		list := &rbacv1.ClusterRoleBindingList{}
		Expect(c.List(ctx, list)).To(Succeed())
		for _, b := range list.Items {
			// Selected by the connection label on the API server; the cached copy keeps the owner
			// annotation, not the labels (whatsappconnection_cache.go).
			Expect(b.Name).To(HavePrefix("whatsapp-session:"))
			Expect(b.Annotations).To(HaveKey(ownerAnnotation), b.Name)
		}
	})

	It("reads them from the API server when the manager may not watch them (namespaced install)", func() {
		scoped := rest.CopyConfig(cfg)
		scoped.Impersonate = rest.ImpersonationConfig{UserName: "no-cluster-rights-" + ns, Groups: []string{"system:authenticated"}}
		Expect(mayWatchClusterRoleBindings(ctx, scoped)).To(BeFalse())
	})
})
