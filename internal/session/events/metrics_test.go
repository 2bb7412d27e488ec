package events_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/waoperator/whatsapp-operator/internal/session/events"
)

func TestMetricsShowBacklogUntilTheSinkRecovers(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	box, cursors := openInbox(t)
	fill(t, box, 2, 3)

	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	d := &events.Deliverer{Sink: events.Sink{Name: "app", URL: srv.URL, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond},
		Source: box, Cursors: cursors, Log: logr.Discard()}
	col := &events.Collector{Deliverers: func() []*events.Deliverer { return []*events.Deliverer{d} }, Inbox: box}
	go func() { _ = d.Run(ctx) }()

	g.Eventually(func() int64 { return d.Stats().Retries }).Should(BeNumerically(">", 4))
	g.Expect(scraped(g, col, "whatsapp_session_events_backlog")).To(BeEquivalentTo(6))
	g.Expect(scraped(g, col, "whatsapp_session_events_oldest_pending_age_seconds")).To(BeNumerically(">", 0))
	g.Expect(scraped(g, col, "whatsapp_session_events_failing")).To(BeEquivalentTo(1))

	up.Store(true)
	g.Eventually(func() int64 { return d.Stats().Cursor }).Should(BeEquivalentTo(6))
	g.Expect(scraped(g, col, "whatsapp_session_events_backlog")).To(BeEquivalentTo(0))
	g.Expect(scraped(g, col, "whatsapp_session_events_delivered_total")).To(BeEquivalentTo(6))
	g.Expect(scraped(g, col, "whatsapp_session_events_failing")).To(BeEquivalentTo(0))
	g.Expect(scraped(g, col, "whatsapp_session_events_dead_lettered_total")).To(BeEquivalentTo(0))
}

// scraped parses the collector's text with Prometheus's own parser (so the format is checked
// too) and returns the value of sink "app" in family name.
func scraped(g Gomega, col *events.Collector, name string) float64 {
	var b strings.Builder
	g.Expect(col.WriteText(&b)).To(Succeed())
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(b.String()))
	g.Expect(err).NotTo(HaveOccurred())
	f, ok := families[name]
	g.Expect(ok).To(BeTrue(), "no family %s in\n%s", name, b.String())
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "sink" && l.GetValue() == "app" {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	g.Expect(false).To(BeTrue(), "no sample for sink app in %s", name)
	return -1
}

// Events a sink refuses for good are counted as given up without a dead-letter sink and as dead
// lettered with one; neither shows in the backlog once the sink moved on.
func TestMetricsCountGivenUpAndDeadLetteredEvents(t *testing.T) {
	g := NewWithT(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnprocessableEntity)
	}))
	defer refusing.Close()
	dls := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer dls.Close()
	for _, withDL := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		box, cursors := openInbox(t)
		fill(t, box, 2, 2)
		sink := events.Sink{Name: "app", URL: refusing.URL}
		if withDL {
			sink.DeadLetter = &events.Endpoint{URL: dls.URL}
		}
		d := &events.Deliverer{Sink: sink, Source: box, Cursors: cursors, Log: logr.Discard()}
		col := &events.Collector{Deliverers: func() []*events.Deliverer { return []*events.Deliverer{d} }, Inbox: box}
		go func() { _ = d.Run(ctx) }()
		g.Eventually(func() int64 { return d.Stats().Cursor }).WithTimeout(10 * time.Second).Should(BeEquivalentTo(4))
		given, dead := scraped(g, col, "whatsapp_session_events_given_up_total"), scraped(g, col, "whatsapp_session_events_dead_lettered_total")
		if withDL {
			g.Expect([]float64{given, dead}).To(Equal([]float64{0, 4}), "with a dead-letter sink")
		} else {
			g.Expect([]float64{given, dead}).To(Equal([]float64{4, 0}), "without one")
		}
		g.Expect(scraped(g, col, "whatsapp_session_events_backlog")).To(BeEquivalentTo(0))
		g.Expect(scraped(g, col, "whatsapp_session_events_delivered_total")).To(BeEquivalentTo(0))
		cancel()
	}
}
