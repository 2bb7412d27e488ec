package events

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// BacklogSource reports how many events follow a cursor and the oldest one's arrival time.
type BacklogSource interface {
	Backlog(ctx context.Context, seq int64) (int64, time.Time, error)
}

// Collector exposes the deliverers' figures as Prometheus metrics, labelled by sink. Backlog and
// age are read from the inbox at scrape time, so they cost nothing between scrapes.
//
// It writes the Prometheus text format itself, as the session's own metrics do: the session
// binary does not link client_golang (cmd/session's deps test).
type Collector struct {
	Deliverers func() []*Deliverer
	Inbox      BacklogSource
}

type eventFamily struct {
	name, kind, help string
	value            func(Stats, int64, time.Time) float64
	fromInbox        bool
}

var eventFamilies = []eventFamily{
	{"whatsapp_session_events_delivered_total", "counter", "Events a sink accepted.",
		func(s Stats, _ int64, _ time.Time) float64 { return float64(s.Delivered) }, false},
	{"whatsapp_session_events_retries_total", "counter", "Failed deliveries that were retried.",
		func(s Stats, _ int64, _ time.Time) float64 { return float64(s.Retries) }, false},
	{"whatsapp_session_events_given_up_total", "counter", "Events a sink refused for good or that outlived its maximum age (they stay in the inbox).",
		func(s Stats, _ int64, _ time.Time) float64 { return float64(s.GaveUp) }, false},
	{"whatsapp_session_events_dead_lettered_total", "counter", "Events handed to the sink's dead-letter destination.",
		func(s Stats, _ int64, _ time.Time) float64 { return float64(s.DeadLettered) }, false},
	{"whatsapp_session_events_failing", "gauge", "1 while the sink is failing (three failed tries in a row, until a success).",
		func(s Stats, _ int64, _ time.Time) float64 {
			if s.Failing {
				return 1
			}
			return 0
		}, false},
	{"whatsapp_session_events_backlog", "gauge", "Events in the inbox past the sink's cursor.",
		func(_ Stats, n int64, _ time.Time) float64 { return float64(n) }, true},
	{"whatsapp_session_events_oldest_pending_age_seconds", "gauge", "Age of the oldest event past the sink's cursor (0 when none).",
		func(_ Stats, _ int64, oldest time.Time) float64 {
			if oldest.IsZero() {
				return 0
			}
			return time.Since(oldest).Seconds()
		}, true},
}

// WriteText writes every family in the Prometheus text exposition format (0.0.4). A sink whose
// backlog cannot be read gets no backlog samples rather than wrong ones.
func (c *Collector) WriteText(w io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type sample struct {
		sink     string
		st       Stats
		n        int64
		oldest   time.Time
		backlogK bool
	}
	var samples []sample
	for _, d := range c.Deliverers() {
		s := sample{sink: d.Sink.Name, st: d.Stats()}
		n, oldest, err := c.Inbox.Backlog(ctx, s.st.Cursor)
		if err == nil {
			s.n, s.oldest, s.backlogK = n, oldest, true
		}
		samples = append(samples, s)
	}
	var b strings.Builder
	for _, f := range eventFamilies {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.kind)
		for _, s := range samples {
			if f.fromInbox && !s.backlogK {
				continue
			}
			fmt.Fprintf(&b, "%s{sink=%s} %s\n", f.name, strconv.Quote(s.sink),
				strconv.FormatFloat(f.value(s.st, s.n, s.oldest), 'g', -1, 64))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
