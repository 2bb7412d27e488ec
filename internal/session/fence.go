package session

import (
	"sync"
	"time"
)

// fence ties the WhatsApp client to the Lease: the client is closed, first thing, before the
// Lease is released or when it is lost, and by the watchdog when no renewal has succeeded for
// RenewDeadline, which is before the Lease can expire for anyone else.
type fence struct {
	renewDeadline time.Duration
	now           func() time.Time

	mu        sync.Mutex
	lastRenew time.Time // start of the last renewal the API server accepted
	closer    func()
	closed    bool
}

func newFence(renewDeadline time.Duration) *fence {
	return &fence{renewDeadline: renewDeadline, now: time.Now}
}

// renewed records a successful write of the Lease that started at start. The start, not the
// answer, counts: the API server may have stored it any time after start.
func (f *fence) renewed(start time.Time) {
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

// holding is true while the last renewal is younger than the renew deadline and the fence has
// not been closed: the only time the session may talk to WhatsApp or write status.
func (f *fence) holding() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.closed && !f.lastRenew.IsZero() && f.now().Sub(f.lastRenew) < f.renewDeadline
}

// lapsed is true once the renew deadline has passed after a renewal (or the fence closed): from
// then on the session may not write its Lease again, not even to take a released one, because a
// successor may already be connected. A session that has never held the Lease has not lapsed.
func (f *fence) lapsed(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lapsedLocked(now)
}

func (f *fence) lapsedLocked(now time.Time) bool {
	return f.closed || (!f.lastRenew.IsZero() && now.Sub(f.lastRenew) >= f.renewDeadline)
}

// expiresIn is how long until the renew deadline passes.
func (f *fence) expiresIn() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.renewDeadline - f.now().Sub(f.lastRenew)
}

// guard registers the client's closer. A client made after the fence closed is closed at once.
func (f *fence) guard(closer func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		closer()
		return
	}
	f.closer = closer
}

// close closes the client (once) and returns only when it is closed.
func (f *fence) close() {
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
