package outbox

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Counters count what the workers of one session process handed to WhatsApp. They outlive a
// worker (a client that reconnects gets a new one), so they live in the Slot.
type Counters struct {
	// Sends counts attempts handed to WhatsApp, retries included.
	Sends atomic.Int64
	// Failures counts attempts that did not end in WhatsApp's acknowledgement: timed out,
	// refused, or not connected.
	Failures atomic.Int64
}

// countedStates are the states the outbox gauge has a series for, always all of them (a state
// with no message is 0, not missing).
var countedStates = []State{Queued, Sending, Sent, Delivered, Read, Failed}

// Counts returns how many rows are in each state.
func (s *Store) Counts(ctx context.Context) (map[State]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM waoperator_outbox GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	out := map[State]int64{}
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, err
		}
		out[State(state)] = n
	}
	return out, rows.Err()
}

// OldestUnfinished is when the oldest queued or sending row was queued (zero when none is).
func (s *Store) OldestUnfinished(ctx context.Context) (time.Time, error) {
	var oldest *int64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(created_at) FROM waoperator_outbox WHERE state IN `+unfinished).Scan(&oldest); err != nil || oldest == nil {
		return time.Time{}, err
	}
	return time.UnixMilli(*oldest), nil
}

// WriteMetrics writes the outbox's families in the Prometheus text format (0.0.4), as the
// session's own metrics are written (no client_golang in the session binary). The counters are
// the process's; the message gauges are read from the table at scrape time, and only by the
// session whose outbox is open (the Lease holder), so that two pods of a connection never both
// report its messages. Nothing here names a message or a recipient.
func (s *Slot) WriteMetrics(w io.Writer) error {
	var b strings.Builder
	family := func(name, kind, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
	}
	sample := func(name, labels string, v float64) {
		fmt.Fprintf(&b, "%s%s %s\n", name, labels, strconv.FormatFloat(v, 'g', -1, 64))
	}
	family("whatsapp_session_outbox_sends_total", "counter", "Messages handed to WhatsApp, retries included.")
	sample("whatsapp_session_outbox_sends_total", "", float64(s.Counters.Sends.Load()))
	family("whatsapp_session_outbox_send_failures_total", "counter", "Sends that did not end in WhatsApp's acknowledgement (timed out, refused, not connected).")
	sample("whatsapp_session_outbox_send_failures_total", "", float64(s.Counters.Failures.Load()))
	if box := s.Get(); box != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if counts, err := box.Store.Counts(ctx); err == nil {
			family("whatsapp_session_outbox_messages", "gauge", "Messages in the outbox, by state.")
			for _, st := range countedStates {
				sample("whatsapp_session_outbox_messages", `{state="`+string(st)+`"}`, float64(counts[st]))
			}
		}
		if oldest, err := box.Store.OldestUnfinished(ctx); err == nil {
			age := 0.0
			if !oldest.IsZero() {
				age = max(time.Since(oldest).Seconds(), 0)
			}
			family("whatsapp_session_outbox_oldest_unsent_age_seconds", "gauge", "Age of the oldest queued or sending message (0 when none).")
			sample("whatsapp_session_outbox_oldest_unsent_age_seconds", "", age)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
