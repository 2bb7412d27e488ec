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
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
)

func TestMetricsShowBacklogUntilTheSinkRecovers(t *testing.T) {
	g := NewWithT(t)
	db := openDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	box, err := inbox.Open(ctx, db, "sqlite")
	g.Expect(err).NotTo(HaveOccurred())
	cursors, err := events.OpenCursors(ctx, db)
	g.Expect(err).NotTo(HaveOccurred())
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(&events.Collector{Deliverers: func() []*events.Deliverer { return []*events.Deliverer{d} }, Inbox: box})
	go func() { _ = d.Run(ctx) }()

	g.Eventually(func() int64 { return d.Stats().Retries }).Should(BeNumerically(">", 4))
	g.Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP whatsapp_session_events_backlog Events in the inbox past the sink's cursor.
# TYPE whatsapp_session_events_backlog gauge
whatsapp_session_events_backlog{sink="app"} 6
`), "whatsapp_session_events_backlog")).To(Succeed())
	g.Expect(gathered(g, reg, "whatsapp_session_events_oldest_pending_age_seconds")).To(BeNumerically(">", 0))

	up.Store(true)
	g.Eventually(func() int64 { return d.Stats().Cursor }).Should(BeEquivalentTo(6))
	g.Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP whatsapp_session_events_backlog Events in the inbox past the sink's cursor.
# TYPE whatsapp_session_events_backlog gauge
whatsapp_session_events_backlog{sink="app"} 0
# HELP whatsapp_session_events_delivered_total Events a sink accepted.
# TYPE whatsapp_session_events_delivered_total counter
whatsapp_session_events_delivered_total{sink="app"} 6
`), "whatsapp_session_events_backlog", "whatsapp_session_events_delivered_total")).To(Succeed())
}

func gathered(g Gomega, reg *prometheus.Registry, name string) float64 {
	families, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
