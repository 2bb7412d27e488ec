package outbox_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
)

// scrape parses the slot's text with Prometheus's own parser (so that the format is checked
// too): family name → label value (or "") → value.
func scrape(g Gomega, slot *outbox.Slot) map[string]map[string]float64 {
	var b strings.Builder
	g.Expect(slot.WriteMetrics(&b)).To(Succeed())
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(b.String()))
	g.Expect(err).NotTo(HaveOccurred(), b.String())
	out := map[string]map[string]float64{}
	for name, f := range families {
		out[name] = map[string]float64{}
		for _, m := range f.GetMetric() {
			label := ""
			if len(m.GetLabel()) > 0 {
				label = m.GetLabel()[0].GetValue()
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[name][label] = v
		}
	}
	return out
}

func TestMetricsCountMessagesByStateAndTheSendsOfTheProcess(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store, _ := newSQLiteStore(t)
	hold := make(chan struct{})
	sender := &scriptedSender{
		script: map[string][]error{"refused": {&outbox.PermanentError{Reason: "not on WhatsApp"}}},
		hold:   map[string]chan struct{}{"slow": hold},
	}
	slot := &outbox.Slot{}
	g.Expect(scrape(g, slot)).NotTo(HaveKey("whatsapp_session_outbox_messages"),
		"no outbox open here (not the Lease holder): no message figures")

	box := outbox.New(store, sender)
	box.Worker.Counters = &slot.Counters
	for _, r := range []outbox.Request{
		{ID: "ok", To: "a@s.whatsapp.net", Text: "ok"},
		{ID: "refused", To: "b@s.whatsapp.net", Text: "refused"},
		{ID: "slow", To: "c@s.whatsapp.net", Text: "slow"},
		{ID: "behind", To: "c@s.whatsapp.net", Text: "behind the slow one"},
	} {
		_, _, err := box.Submit(ctx, r)
		g.Expect(err).NotTo(HaveOccurred())
	}
	slot.Set(box)
	before := scrape(g, slot)
	g.Expect(before["whatsapp_session_outbox_messages"]).To(Equal(map[string]float64{
		"queued": 4, "sending": 0, "sent": 0, "delivered": 0, "read": 0, "failed": 0}))
	g.Expect(before["whatsapp_session_outbox_oldest_unsent_age_seconds"][""]).To(BeNumerically(">", 0))

	start(t, box)
	g.Eventually(func() map[string]float64 { return scrape(g, slot)["whatsapp_session_outbox_messages"] }).Should(Equal(map[string]float64{
		"queued": 1, "sending": 1, "sent": 1, "delivered": 0, "read": 0, "failed": 1}))
	m := scrape(g, slot)
	g.Expect(m["whatsapp_session_outbox_sends_total"][""]).To(BeEquivalentTo(2), "the slow send is under way, not counted yet")
	g.Expect(m["whatsapp_session_outbox_send_failures_total"][""]).To(BeEquivalentTo(1))

	close(hold)
	g.Eventually(func() map[string]float64 { return scrape(g, slot)["whatsapp_session_outbox_messages"] }).Should(Equal(map[string]float64{
		"queued": 0, "sending": 0, "sent": 3, "delivered": 0, "read": 0, "failed": 1}))
	m = scrape(g, slot)
	g.Expect(m["whatsapp_session_outbox_sends_total"][""]).To(BeEquivalentTo(4))
	g.Expect(m["whatsapp_session_outbox_oldest_unsent_age_seconds"][""]).To(BeZero(), "nothing waits")
}
