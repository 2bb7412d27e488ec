package install_test

import (
	"testing"

	. "github.com/onsi/gomega"

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
	const ns = "admission-events-test"
	admissionNamespace(t, ns, map[string]string{"secret": "whsec_x"}, "hook", "other")
	onlyWACs := userWith(t, ns, "only-wacs", mayEditConnections)
	withSecret := userWith(t, ns, "with-hook", mayEditConnections, mayGetSecret("hook"))

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

	awaitPolicy(t, onlyWACs, connection(ns, "probe", sinks(signed("a", "hook"))), signingRefusal)

	checkAdmission(t, ns, []admissionCase{
		{"an unsigned sink needs only the right to create the resource", onlyWACs, sinks(service("")), ""},
		{"a signing Secret needs get on it", onlyWACs, sinks(signed("a", "hook")), signingRefusal},
		{"a signing Secret with get on it", withSecret, sinks(signed("a", "hook")), ""},
		{"get on one Secret does not lend another", withSecret, sinks(signed("a", "hook"), signed("b", "other")), signingRefusal},
		{"a Service in the resource's namespace, named", onlyWACs, sinks(service(ns)), ""},
		{"a Service in another namespace", onlyWACs, sinks(service("kube-system")), refNSRefusal},
		{"a dead-letter Service in another namespace", onlyWACs, sinks(deadLetterIn("kube-system")), refNSRefusal},
	})

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
