//go:build !unit

package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/session"
)

// reportEventsCondition writes the EventsDelivering condition the way the session does.
func reportEventsCondition(ns, name string, c metav1.Condition) {
	c.Type, c.LastTransitionTime = whatsappv1alpha1.ConditionEventsDelivering, metav1.Now()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&c)
	Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": whatsappv1alpha1.GroupVersion.String(),
		"kind":       "WhatsAppConnection",
		"metadata":   map[string]any{"namespace": ns, "name": name},
		"status":     map[string]any{"conditions": []any{m}},
	}}
	Expect(k8sClient.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(session.EventsFieldManager), client.ForceOwnership)).To(Succeed())
}

// givenUpWarnings lists the EventsGivenUp Warning events about a resource: their message, and
// "(repeated)" when the recorder counted it more than once.
func givenUpWarningList(ns, name string) func() []string {
	return func() []string {
		list := &corev1.EventList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		var out []string
		for _, e := range list.Items {
			if e.Type != corev1.EventTypeWarning || e.InvolvedObject.Name != name || e.Reason != whatsappv1alpha1.ReasonEventsGivenUp {
				continue
			}
			if e.Series != nil || e.Count > 1 {
				out = append(out, e.Message+" (repeated)")
				continue
			}
			out = append(out, e.Message)
		}
		return out
	}
}

var _ = Describe("events a sink gave up on", func() {
	It("records one Warning per episode the session reports, not one per pass or per event", func() {
		ns := newNamespace()
		newConnection(ns, "strand")
		sessionPod(ns, "strand")
		first := "sink app gave up on 3 event(s) (older than the sink's maximum age) and no dead-letter sink took them; they stay in the inbox until the retention ends"
		reportEventsCondition(ns, "strand", metav1.Condition{Status: metav1.ConditionFalse, Reason: whatsappv1alpha1.ReasonEventsGivenUp, Message: first})
		Eventually(givenUpWarningList(ns, "strand")).Should(Equal([]string{first}))

		// Further passes (a spec change, the session's other reports) record nothing new.
		for i := range 3 {
			update(ns, "strand", func(w *whatsappv1alpha1.WhatsAppConnection) {
				w.Labels = map[string]string{"pass": string(rune('a' + i))}
			})
		}
		Consistently(givenUpWarningList(ns, "strand"), 2*time.Second).Should(Equal([]string{first}))

		// The sink delivered again (the episode ended), then gave up again: a new Warning.
		reportEventsCondition(ns, "strand", metav1.Condition{Status: metav1.ConditionTrue, Reason: whatsappv1alpha1.ReasonEventsDelivered, Message: "every sink takes its events"})
		second := "sink app gave up on 1 event(s) (refused by the sink with a status that is not retried) and no dead-letter sink took them; they stay in the inbox until the retention ends"
		reportEventsCondition(ns, "strand", metav1.Condition{Status: metav1.ConditionFalse, Reason: whatsappv1alpha1.ReasonEventsGivenUp, Message: second})
		Eventually(givenUpWarningList(ns, "strand")).Should(ConsistOf(first, second))
	})
})
