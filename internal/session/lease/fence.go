package lease

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Fence ties the WhatsApp client to the Lease: the client is closed, first thing, before the
// Lease is released or when it is lost, and by the watchdog when no renewal has succeeded for
// the renew deadline, which is before the Lease can expire for anyone else.
type Fence struct {
	renewDeadline time.Duration
	now           func() time.Time

	mu        sync.Mutex
	lastRenew time.Time // start of the last renewal the API server accepted
	closer    func()
	closed    bool
}

// NewFence makes an open fence that holds nothing until the elector's first renewal.
func NewFence(renewDeadline time.Duration) *Fence {
	return &Fence{renewDeadline: renewDeadline, now: time.Now}
}

// renewed records a successful write of the Lease that started at start. The start, not the
// answer, counts: the API server may have stored it any time after start.
func (f *Fence) renewed(start time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lapsedLocked(start) {
		// Too late: the renew deadline passed before this write started (a frozen process that
		// woke up). The watchdog drops WhatsApp; nothing revives the fence.
		return
	}
	if start.After(f.lastRenew) {
		f.lastRenew = start
	}
}

// Holding is true while the last renewal is younger than the renew deadline and the fence has
// not been closed: the only time the session may talk to WhatsApp or write status.
func (f *Fence) Holding() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.closed && !f.lastRenew.IsZero() && f.now().Sub(f.lastRenew) < f.renewDeadline
}

// Lapsed is true once the renew deadline has passed after a renewal (or the fence closed): from
// then on the session may not write its Lease again, not even to take a released one, because a
// successor may already be connected. A session that has never held the Lease has not lapsed.
func (f *Fence) Lapsed(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lapsedLocked(now)
}

func (f *Fence) lapsedLocked(now time.Time) bool {
	return f.closed || (!f.lastRenew.IsZero() && now.Sub(f.lastRenew) >= f.renewDeadline)
}

// expiresIn is how long until the renew deadline passes.
func (f *Fence) expiresIn() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.renewDeadline - f.now().Sub(f.lastRenew)
}

// Guard registers the client's closer: the hook the fence calls to close the client. A client
// made after the fence closed is closed at once.
func (f *Fence) Guard(closer func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		closer()
		return
	}
	f.closer = closer
}

// Close closes the client (once) and returns only when it is closed.
func (f *Fence) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	if f.closer != nil {
		f.closer()
	}
}

// Watchdog closes the client and stops the work with ErrRenewDeadline when the renew deadline
// passes without a successful renewal, well before the Lease expires for the others. It returns
// when ctx ends.
func (f *Fence) Watchdog(ctx context.Context, stop context.CancelCauseFunc, log logr.Logger) {
	for {
		d := f.expiresIn()
		if d <= 0 {
			log.Info("no Lease renewal within the renew deadline: dropping the WhatsApp connection", "renewDeadline", f.renewDeadline)
			f.Close()
			stop(ErrRenewDeadline)
			return
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
