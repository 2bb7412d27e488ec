package events

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BacklogSource reports how many events follow a cursor and the oldest one's arrival time.
type BacklogSource interface {
	Backlog(ctx context.Context, seq int64) (int64, time.Time, error)
}

// Collector exposes the deliverers' figures as Prometheus metrics, labelled by sink. Backlog and
// age are read from the inbox at scrape time, so they cost nothing between scrapes.
type Collector struct {
	Deliverers func() []*Deliverer
	Inbox      BacklogSource
}

var (
	descDelivered = prometheus.NewDesc("whatsapp_session_events_delivered_total", "Events a sink accepted.", []string{"sink"}, nil)
	descRetries   = prometheus.NewDesc("whatsapp_session_events_retries_total", "Failed deliveries that were retried.", []string{"sink"}, nil)
	descGaveUp    = prometheus.NewDesc("whatsapp_session_events_given_up_total", "Events a sink refused for good or that outlived its maximum age (they stay in the inbox).", []string{"sink"}, nil)
	descBacklog   = prometheus.NewDesc("whatsapp_session_events_backlog", "Events in the inbox past the sink's cursor.", []string{"sink"}, nil)
	descOldest    = prometheus.NewDesc("whatsapp_session_events_oldest_pending_age_seconds", "Age of the oldest event past the sink's cursor (0 when none).", []string{"sink"}, nil)
)

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDelivered, descRetries, descGaveUp, descBacklog, descOldest} {
		ch <- d
	}
}

func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, d := range c.Deliverers() {
		st, name := d.Stats(), d.Sink.Name
		ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(st.Delivered), name)
		ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(st.Retries), name)
		ch <- prometheus.MustNewConstMetric(descGaveUp, prometheus.CounterValue, float64(st.GaveUp), name)
		n, oldest, err := c.Inbox.Backlog(ctx, st.Cursor)
		if err != nil {
			continue
		}
		age := 0.0
		if !oldest.IsZero() {
			age = time.Since(oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(n), name)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age, name)
	}
}
