package whatsapp

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
)

// delivery runs one deliverer per sink for as long as the client is open. The client is opened
// only while the session holds the Lease (Runtime.lead), so only the Lease holder delivers.
type delivery struct {
	cancel     context.CancelFunc
	stopped    chan struct{} // closed by stop
	changed    chan struct{} // a sink started or stopped failing
	wg         sync.WaitGroup
	deliverers []*events.Deliverer

	healthMu sync.Mutex
	reported map[string]events.Stranding // per sink, the stranding episode as first reported
	// storeFull: the last inbox write found the device store full (inbox_full.go).
	storeFull atomic.Bool
}

// setStoreFull records whether the last inbox write found the store full, and has the change
// reported.
func (d *delivery) setStoreFull(full bool) {
	if d.storeFull.Swap(full) != full {
		d.healthChanged()
	}
}

func startDelivery(box *inbox.Store, cursors *events.Cursors, sinks []events.Sink, source string, retention, pruneEvery time.Duration, log logr.Logger) *delivery {
	ctx, cancel := context.WithCancel(context.Background())
	d := &delivery{cancel: cancel, stopped: make(chan struct{}), changed: make(chan struct{}, 1), reported: map[string]events.Stranding{}}
	for _, sink := range sinks {
		dl := &events.Deliverer{Sink: sink, Source: box, Cursors: cursors, CESource: source, Log: log.WithValues("sink", sink.Name),
			OnHealth: d.healthChanged}
		d.deliverers = append(d.deliverers, dl)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := dl.Run(ctx); err != nil {
				log.Error(err, "event delivery stopped", "sink", sink.Name)
			}
		}()
	}
	// Pruning starts once every deliverer is known: it keeps what any sink still lacks, and a
	// prune that ran before the list was complete would take an event no sink has yet.
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.pruneLoop(ctx, box, retention, pruneEvery, log)
	}()
	return d
}

// notify wakes every deliverer: the inbox has a new event.
func (d *delivery) notify() {
	for _, dl := range d.deliverers {
		dl.Notify()
	}
}

// pruneLoop deletes, at start and then every pruneEvery, the events older than retention that
// every sink has (all of them when there is no sink).
func (d *delivery) pruneLoop(ctx context.Context, box *inbox.Store, retention, pruneEvery time.Duration, log logr.Logger) {
	for {
		upTo := int64(math.MaxInt64)
		for _, dl := range d.deliverers {
			upTo = min(upTo, dl.Stats().Cursor)
		}
		if n, err := box.Prune(ctx, time.Now().Add(-retention), upTo); err != nil && ctx.Err() == nil {
			log.Error(err, "pruning the inbox failed")
		} else if n > 0 {
			log.V(1).Info("pruned the inbox", "events", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pruneEvery):
		}
	}
}

func (d *delivery) stop() {
	close(d.stopped)
	d.cancel()
	d.wg.Wait()
}
