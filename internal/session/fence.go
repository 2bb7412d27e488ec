package session

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// fence ties the WhatsApp client to the Lease. client-go's elector does not fence (its package
// comment says so): it releases the Lease before the guarded work has seen its context end, and
// it reports a failed renewal only RetryPeriod + RenewDeadline after the last good one, later
// than the Lease can expire for others. So the fence closes the client itself, first thing,
// when the Lease is released or lost, and lets the watchdog close it when no renewal has
// succeeded for RenewDeadline.
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

// fencedLock is the Lease lock as the elector sees it: every write is counted and timed, and a
// release (an empty holder) closes the client before it reaches the API server.
type fencedLock struct {
	resourcelock.Interface
	fence  *fence
	writes func()
}

func (l *fencedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	return l.write(ler, func() error { return l.Interface.Create(ctx, ler) })
}

// Update retries once, at once, a conflicting write of a record this session already holds.
// The elector that waited for the Lease can land one last renewal while it is cancelled, after
// the holding elector read the Lease; without the retry the holder would wait a whole
// RetryPeriod (9 s) for its first renewal. A conflict over a record someone else holds is
// returned as is: that is the elector's optimistic lock working.
func (l *fencedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	return l.write(ler, func() error {
		err := l.Interface.Update(ctx, ler)
		if !apierrors.IsConflict(err) || ler.HolderIdentity != l.Identity() {
			return err
		}
		current, _, getErr := l.Get(ctx) // also refreshes the lock's resourceVersion
		if getErr != nil || current.HolderIdentity != l.Identity() {
			return err
		}
		return l.Interface.Update(ctx, ler)
	})
}

func (l *fencedLock) write(ler resourcelock.LeaderElectionRecord, do func() error) error {
	if ler.HolderIdentity != l.Identity() {
		l.fence.close()
	}
	start := l.fence.now()
	err := do()
	l.writes()
	if err == nil && ler.HolderIdentity == l.Identity() {
		l.fence.renewed(start)
	}
	return err
}
