package install_test

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

const (
	imageRefusal  = "spec.session.image: only a user who may create pods"
	secretRefusal = "spec.store.postgres.secretRef.name: only a user who may get that Secret"
	reconnectLong = "metadata.annotations[whatsapp.waoperator.io/reconnect-requested-at]: must be at most 64 characters"
	logoutInvalid = "metadata.annotations[whatsapp.waoperator.io/logout-requested-at]: must be an RFC 3339 timestamp"
)

// TestAdmissionPolicy installs config/admission and acts as users with different rights: a
// WhatsAppConnection may ask the operator only for what its author could do directly.
func TestAdmissionPolicy(t *testing.T) {
	g := NewWithT(t)
	applyAll(t, "install-test", decode(t, mustRead(t, "config/crd/bases/whatsapp.waoperator.io_whatsappconnections.yaml")))
	applyAll(t, "install-test", decode(t, run(t, root, kustomize(t), "build", "config/admission")))

	const ns = "admission-test"
	applyAll(t, "install-test", []*unstructured.Unstructured{restrictedNamespace(ns)})
	for _, s := range []string{"dsn", "other"} {
		g.Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: s}, StringData: map[string]string{"dsn": "postgres://x"}}))).To(Succeed())
	}
	wacs := rbacv1.PolicyRule{APIGroups: []string{whatsappv1alpha1.GroupVersion.Group}, Resources: []string{"whatsappconnections"},
		Verbs: []string{"get", "list", "create", "update", "patch"}}
	pods := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}}
	secret := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"dsn"}, Verbs: []string{"get"}}
	onlyWACs := userWith(t, ns, "only-wacs", wacs)
	withPods := userWith(t, ns, "with-pods", wacs, pods)
	withSecret := userWith(t, ns, "with-secret", wacs, secret)

	image := func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.Session.Image = "example.com/anything:v1" }
	postgres := func(name string) func(*whatsappv1alpha1.WhatsAppConnection) {
		return func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Spec.Store = whatsappv1alpha1.StoreSpec{Postgres: &whatsappv1alpha1.PostgresStore{SecretRef: whatsappv1alpha1.SecretKeyRef{Name: name}}}
		}
	}
	annotate := func(key, value string) func(*whatsappv1alpha1.WhatsAppConnection) {
		return func(w *whatsappv1alpha1.WhatsAppConnection) { w.Annotations = map[string]string{key: value} }
	}

	// The API server applies a new policy asynchronously: a dry-run probe shows when it is in force.
	g.Eventually(func() error {
		return onlyWACs.Create(ctx, connection(ns, "probe", image), client.DryRunAll)
	}).WithTimeout(30 * time.Second).Should(MatchError(ContainSubstring(imageRefusal)))

	longToken := strings.Repeat("x", 65)
	for _, tc := range []struct {
		name   string
		as     client.Client
		mutate func(*whatsappv1alpha1.WhatsAppConnection)
		refuse string // "" admits
	}{
		{"a plain resource needs only the right to create it", onlyWACs, nil, ""},
		{"an image override needs create pods", onlyWACs, image, imageRefusal},
		{"an image override with create pods", withPods, image, ""},
		{"a postgres Secret needs get on that Secret", onlyWACs, postgres("dsn"), secretRefusal},
		{"a postgres Secret with get on it", withSecret, postgres("dsn"), ""},
		{"get on one Secret does not lend another", withSecret, postgres("other"), secretRefusal},
		{"create pods does not lend a Secret", withPods, postgres("dsn"), secretRefusal},
		{"a reconnect token of 64 characters", onlyWACs, annotate(whatsappv1alpha1.ReconnectRequestedAtAnnotation, longToken[:64]), ""},
		{"a reconnect token of 65 characters", onlyWACs, annotate(whatsappv1alpha1.ReconnectRequestedAtAnnotation, longToken), reconnectLong},
		{"a logout token that is a timestamp", onlyWACs, annotate(whatsappv1alpha1.LogoutRequestedAtAnnotation, "2026-01-02T15:04:05.123456789Z"), ""},
		{"a logout token that is not a timestamp", onlyWACs, annotate(whatsappv1alpha1.LogoutRequestedAtAnnotation, "now"), logoutInvalid},
		{"a long logout token", onlyWACs, annotate(whatsappv1alpha1.LogoutRequestedAtAnnotation, "2026-01-02T15:04:05Z"+longToken), logoutInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.as.Create(ctx, connection(ns, "", tc.mutate), client.DryRunAll)
			if tc.refuse == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.refuse) {
				t.Fatalf("got %v, want a refusal saying %q", err, tc.refuse)
			}
			if strings.Contains(err.Error(), longToken) {
				t.Errorf("the refusal echoes the token: %v", err)
			}
		})
	}

	t.Run("an update that adds an image override needs create pods", func(t *testing.T) {
		g := NewWithT(t)
		wac := connection(ns, "", nil)
		g.Expect(onlyWACs.Create(ctx, wac)).To(Succeed())
		image(wac)
		g.Expect(onlyWACs.Update(ctx, wac)).To(MatchError(ContainSubstring(imageRefusal)))
		g.Expect(withPods.Update(ctx, wac)).To(Succeed())
	})
	t.Run("an edit that keeps someone else's values is not judged", func(t *testing.T) {
		g := NewWithT(t)
		wac := connection(ns, "", image, postgres("dsn"),
			annotate(whatsappv1alpha1.ReconnectRequestedAtAnnotation, "1"))
		g.Expect(k8sClient.Create(ctx, wac)).To(Succeed())
		wac.Spec.Suspend = true
		g.Expect(onlyWACs.Update(ctx, wac)).To(Succeed())
		wac.Spec.Session.Image = "example.com/other:v2"
		g.Expect(onlyWACs.Update(ctx, wac)).To(MatchError(ContainSubstring(imageRefusal)))
	})
}

// userWith binds a Role with the rules to a user and returns a client that acts as that user.
func userWith(t testing.TB, ns, user string, rules ...rbacv1.PolicyRule) client.Client {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Rules: rules}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := client.IgnoreAlreadyExists(k8sClient.Create(ctx, obj)); err != nil {
			t.Fatal(err)
		}
	}
	// The RBAC authorizer learns of a new binding from a watch: wait until it grants the rules.
	NewWithT(t).Eventually(func() bool {
		for _, r := range rules {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: r.Verbs[0], Group: r.APIGroups[0], Resource: r.Resources[0]}}}
			if len(r.ResourceNames) > 0 {
				sar.Spec.ResourceAttributes.Name = r.ResourceNames[0]
			}
			if err := k8sClient.Create(ctx, sar); err != nil || !sar.Status.Allowed {
				return false
			}
		}
		return true
	}).Should(BeTrue())
	cfg := rest.CopyConfig(restConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func connection(ns, name string, mutate ...func(*whatsappv1alpha1.WhatsAppConnection)) *whatsappv1alpha1.WhatsAppConnection {
	w := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if name == "" {
		w.GenerateName = "wac-"
	}
	for _, m := range mutate {
		if m != nil {
			m(w)
		}
	}
	return w
}
