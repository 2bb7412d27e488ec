package whatsapp

import (
	"context"
	"slices"
	"time"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
)

// reportHealth sends the sinks' health to the state machine (session.SinksHealth), which turns
// it into the EventsDelivering condition: at once at start, then when a sink starts or stops
// failing, but never more than once per interval, and again every interval so that a status
// write that failed is retried (the machine writes only what differs from what it wrote). With
// no sink it reports too: a condition left by an earlier configuration is removed, and a full
// device store is said whether or not events are delivered anywhere.
func (d *delivery) reportHealth(emit func(context.Context, session.Event) bool, interval time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	changed := d.changed
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		<-d.stopped
		cancel()
	}()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if !emit(ctx, d.health()) {
			return
		}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				if wait := interval - time.Since(last); wait > 0 {
					select { // hold off; the change is reported at the end of the wait
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
				}
			case <-tick.C:
			}
			if !emit(ctx, d.health()) {
				return
			}
			last = time.Now()
		}
	}()
}

// healthChanged is each deliverer's OnHealth.
func (d *delivery) healthChanged() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// health is every sink's state, failing and stranding ones in spec order. A stranding episode
// is reported with the count of events at its first report, kept for the whole episode: the
// condition (and the controller's Warning) changes once per episode, not with every event.
func (d *delivery) health() session.SinksHealth {
	d.healthMu.Lock()
	defer d.healthMu.Unlock()
	h := session.SinksHealth{Sinks: len(d.deliverers), StoreFull: d.storeFull.Load()}
	for _, dl := range d.deliverers {
		if failing, class := dl.Health(); failing {
			h.Failing = append(h.Failing, session.SinkFailure{Sink: dl.Sink.Name, Class: class})
		}
		st := dl.Stranding()
		if st.Episode == 0 {
			delete(d.reported, dl.Sink.Name)
			continue
		}
		if prev, ok := d.reported[dl.Sink.Name]; ok && prev.Episode == st.Episode {
			st = prev
		} else {
			d.reported[dl.Sink.Name] = st
		}
		h.Stranded = append(h.Stranded, session.SinkStranding{Sink: dl.Sink.Name, Reason: st.Reason, Events: st.Events})
	}
	h.Failing, h.Stranded = slices.Clip(h.Failing), slices.Clip(h.Stranded)
	return h
}

// emit hands ev to the state machine; false once the client or the report is closed.
func (a *client) emit(ctx context.Context, ev session.Event) bool {
	select {
	case a.events <- ev:
		return true
	case <-a.done:
		return false
	case <-ctx.Done():
		return false
	}
}

// EventsView is an open client's deliverers and inbox.
type EventsView struct {
	Deliverers []*events.Deliverer
	Inbox      *inbox.Store
}
