package session

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

func TestSinksConditionSaysEventsWereGivenUpBeforeFailures(t *testing.T) {
	g := NewWithT(t)
	c := sinksCondition(SinksHealth{Sinks: 3,
		Failing:  []SinkFailure{{Sink: "app", Class: "HTTP 503"}, {Sink: "audit", Class: "Timeout"}},
		Stranded: []SinkStranding{{Sink: "app", Reason: "maxAge", Events: 7}},
	})
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Reason).To(Equal(whatsappv1alpha1.ReasonEventsGivenUp))
	g.Expect(c.Message).To(Equal("sink app gave up on 7 event(s) (older than the sink's maximum age) and no dead-letter sink took them; " +
		"they stay in the inbox until the retention ends (also failing: audit)"))

	c = sinksCondition(SinksHealth{Sinks: 1, Failing: []SinkFailure{{Sink: "app", Class: "HTTP 503"}}})
	g.Expect(c.Reason).To(Equal(whatsappv1alpha1.ReasonSinkFailing), "failing without given-up events")
	c = sinksCondition(SinksHealth{Sinks: 1})
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue))

	g.Expect(sinksCondition(SinksHealth{})).To(BeNil(), "no sinks, no condition")
}

func TestSinksConditionSaysTheStoreIsFullWithOrWithoutSinks(t *testing.T) {
	g := NewWithT(t)
	for _, sinks := range []int{0, 2} {
		c := sinksCondition(SinksHealth{Sinks: sinks, StoreFull: true, Failing: []SinkFailure{{Sink: "app", Class: "HTTP 503"}}})
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(whatsappv1alpha1.ReasonStoreFull))
		g.Expect(c.Message).To(ContainSubstring("not acknowledged"))
	}
}
