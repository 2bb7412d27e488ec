package install_test

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

const (
	signingRefusal = "spec.events.sinks[*].signingSecretRef.name: only a user who may get that Secret"
	refNSRefusal   = "spec.events.sinks[*].ref.namespace, spec.events.sinks[*].delivery.deadLetterSink.ref.namespace: a sink Service must be in namespace"
)

// TestAdmissionPolicyEvents: a sink's signing Secret is lent to the session only by a user who
// may read it (the requester could otherwise learn it from a sink they run), and a sink's
// Service stays in the resource's namespace.
func TestAdmissionPolicyEvents(t *testing.T) {
	g := NewWithT(t)
	applyAll(t, "install-test", decode(t, mustRead(t, "config/crd/bases/whatsapp.waoperator.io_whatsappconnections.yaml")))
	applyAll(t, "install-test", decode(t, run(t, root, kustomize(t), "build", "config/admission")))

	const ns = "admission-events-test"
	applyAll(t, "install-test", []*unstructured.Unstructured{restrictedNamespace(ns)})
	for _, s := range []string{"hook", "other"} {
		g.Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: s}, StringData: map[string]string{"secret": "whsec_x"}}))).To(Succeed())
	}
	wacs := rbacv1.PolicyRule{APIGroups: []string{whatsappv1alpha1.GroupVersion.Group}, Resources: []string{"whatsappconnections"},
		Verbs: []string{"get", "list", "create", "update", "patch"}}
	secret := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"hook"}, Verbs: []string{"get"}}
	onlyWACs := userWith(t, ns, "only-wacs", wacs)
	withSecret := userWith(t, ns, "with-hook", wacs, secret)

	sinks := func(s ...whatsappv1alpha1.EventSink) func(*whatsappv1alpha1.WhatsAppConnection) {
		return func(w *whatsappv1alpha1.WhatsAppConnection) { w.Spec.Events = &whatsappv1alpha1.EventsSpec{Sinks: s} }
	}
	signed := func(name, secret string) whatsappv1alpha1.EventSink {
		return whatsappv1alpha1.EventSink{Name: name, Destination: whatsappv1alpha1.Destination{URI: "https://hooks.example.com/" + name},
			SigningSecretRef: &whatsappv1alpha1.SigningSecretRef{Name: secret}}
	}
	service := func(namespace string) whatsappv1alpha1.EventSink {
		return whatsappv1alpha1.EventSink{Name: "svc", Destination: whatsappv1alpha1.Destination{
			Ref: &whatsappv1alpha1.DestinationRef{Kind: "Service", Name: "app", Namespace: namespace}}}
	}
	deadLetterIn := func(namespace string) whatsappv1alpha1.EventSink {
		s := signed("dl", "")
		s.SigningSecretRef = nil
		s.Delivery = &whatsappv1alpha1.EventDelivery{DeadLetterSink: &whatsappv1alpha1.Destination{
			Ref: &whatsappv1alpha1.DestinationRef{Kind: "Service", Name: "dlq", Namespace: namespace}}}
		return s
	}

	g.Eventually(func() error {
		return onlyWACs.Create(ctx, connection(ns, "probe", sinks(signed("a", "hook"))), client.DryRunAll)
	}).WithTimeout(30 * time.Second).Should(MatchError(ContainSubstring(signingRefusal)))

	for _, tc := range []struct {
		name   string
		as     client.Client
		mutate func(*whatsappv1alpha1.WhatsAppConnection)
		refuse string
	}{
		{"an unsigned sink needs only the right to create the resource", onlyWACs, sinks(service("")), ""},
		{"a signing Secret needs get on it", onlyWACs, sinks(signed("a", "hook")), signingRefusal},
		{"a signing Secret with get on it", withSecret, sinks(signed("a", "hook")), ""},
		{"get on one Secret does not lend another", withSecret, sinks(signed("a", "hook"), signed("b", "other")), signingRefusal},
		{"a Service in the resource's namespace, named", onlyWACs, sinks(service(ns)), ""},
		{"a Service in another namespace", onlyWACs, sinks(service("kube-system")), refNSRefusal},
		{"a dead-letter Service in another namespace", onlyWACs, sinks(deadLetterIn("kube-system")), refNSRefusal},
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
		})
	}

	t.Run("an edit that keeps someone else's signing Secret is not judged; adding one is", func(t *testing.T) {
		g := NewWithT(t)
		wac := connection(ns, "", sinks(signed("a", "hook")))
		g.Expect(k8sClient.Create(ctx, wac)).To(Succeed())
		wac.Spec.Suspend = true
		g.Expect(onlyWACs.Update(ctx, wac)).To(Succeed())
		wac.Spec.Events.Sinks = append(wac.Spec.Events.Sinks, signed("b", "other"))
		g.Expect(withSecret.Update(ctx, wac)).To(MatchError(ContainSubstring(signingRefusal)))
	})
}
