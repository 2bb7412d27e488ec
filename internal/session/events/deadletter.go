package events

import (
	"context"
	"strconv"
	"time"

	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
)

// giveUp hands an event the sink will not take to the dead-letter destination, retried like
// the sink for up to another MaxAge; without one (or when that fails too) the event stays in
// the inbox, counted as given up, and the sink moves on.
func (d *Deliverer) giveUp(ctx context.Context, ev inbox.Event, reason string, status int) {
	s := d.Sink
	dl := s.DeadLetter
	if dl == nil || dl.Invalid != "" {
		d.strand(reason)
		return
	}
	extra := map[string]string{"deadletterreason": reason, "deadlettersink": s.Name}
	if status != 0 {
		extra["deadletterstatus"] = strconv.Itoa(status)
	}
	deadline := time.Now().Add(s.MaxAge)
	for attempt := 0; ; attempt++ {
		code, retryAfter, err := d.post(ctx, dl.Client, dl.URL, ev, extra)
		switch {
		case err == nil && code >= 200 && code < 300:
			d.deadLettered.Add(1)
			return
		case ctx.Err() != nil:
			return
		case (err == nil && !retryable(code)) || time.Now().After(deadline):
			d.strand(reason)
			d.Log.Info("the dead-letter destination did not take the event either; it stays in the inbox", "sink", s.Name, "event", ev.ID, "error", errorClass(err, code))
			return
		}
		wait := max(backoff(s.MinBackoff, s.MaxBackoff, attempt), min(retryAfter, s.MaxBackoff))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}
