package install_test

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"

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
	const ns = "admission-test"
	admissionNamespace(t, ns, map[string]string{"dsn": "postgres://x"}, "dsn", "other")
	pods := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}}
	onlyWACs := userWith(t, ns, "only-wacs", mayEditConnections)
	withPods := userWith(t, ns, "with-pods", mayEditConnections, pods)
	withSecret := userWith(t, ns, "with-secret", mayEditConnections, mayGetSecret("dsn"))

	image := func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.Session.Image = "example.com/anything:v1" }
	postgres := func(name string) func(*whatsappv1alpha1.WhatsAppConnection) {
		return func(w *whatsappv1alpha1.WhatsAppConnection) {
			w.Spec.Store = whatsappv1alpha1.StoreSpec{Postgres: &whatsappv1alpha1.PostgresStore{SecretRef: whatsappv1alpha1.SecretKeyRef{Name: name}}}
		}
	}
	annotate := func(key, value string) func(*whatsappv1alpha1.WhatsAppConnection) {
		return func(w *whatsappv1alpha1.WhatsAppConnection) { w.Annotations = map[string]string{key: value} }
	}

	awaitPolicy(t, onlyWACs, connection(ns, "probe", image), imageRefusal)

	longToken := strings.Repeat("x", 65)
	checkAdmission(t, ns, []admissionCase{
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
	}, longToken)

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
