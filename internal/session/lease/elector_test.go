package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// memLease is a Lease in memory with the API server's optimistic lock: an update must carry
// the current resourceVersion.
type memLease struct {
	lease           coordinationv1.Lease
	version         int
	gets, updates   int
	conflictUpdates int // the next n updates conflict, as if someone wrote in between
}

func (m *memLease) GetLease(context.Context) (*coordinationv1.Lease, error) {
	m.gets++
	return m.lease.DeepCopy(), nil
}

func (m *memLease) UpdateLease(_ context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	m.updates++
	if m.conflictUpdates > 0 || l.ResourceVersion != m.lease.ResourceVersion {
		m.conflictUpdates = max(0, m.conflictUpdates-1)
		m.bump()
		return nil, apierrors.NewConflict(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "session", nil)
	}
	m.lease = *l.DeepCopy()
	m.bump()
	return m.lease.DeepCopy(), nil
}

func (m *memLease) bump() {
	m.version++
	m.lease.ResourceVersion = string(rune('a' + m.version))
}

// heldBy sets the Lease as another node wrote it: renewTime from that node's clock.
func (m *memLease) heldBy(holder string, renewed time.Time) {
	at := metav1.NewMicroTime(renewed)
	m.lease.Spec = coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To[int32](15),
		AcquireTime: &at, RenewTime: &at, LeaseTransitions: ptr.To[int32](3)}
	m.bump()
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newTestElector(api Client, c *clock) *Elector {
	f := NewFence(11 * time.Second)
	f.now = c.now
	e := NewElector(api, Options{Identity: "me", Timings: Timings{Duration: 15 * time.Second, RenewDeadline: 11 * time.Second}, Fence: f})
	e.now = c.now
	return e
}

// holding returns an elector that has just taken a free Lease (an empty holder).
func holding(t *testing.T) (*Elector, *memLease, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	api := &memLease{}
	api.heldBy("", c.t)
	e := newTestElector(api, c)
	if held, err := e.tryAcquireOrRenew(context.Background()); !held || err != nil {
		t.Fatalf("an empty holder is free to take: held=%v err=%v", held, err)
	}
	return e, api, c
}

func TestElectorTakesAnotherHoldersLeaseOnlyAfterItStoppedChangingForItsDuration(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	api := &memLease{}
	// Written an hour "ago" by a node whose clock is off: only this process's clock counts.
	api.heldBy("other", c.t.Add(-time.Hour))
	e := newTestElector(api, c)
	ctx := context.Background()

	if held, err := e.tryAcquireOrRenew(ctx); held || err != nil {
		t.Fatalf("first sight of another holder's Lease: held=%v err=%v; want false, nil", held, err)
	}
	c.advance(14 * time.Second)
	if held, _ := e.tryAcquireOrRenew(ctx); held {
		t.Fatal("took the Lease 14 s after first seeing it; its duration is 15 s")
	}
	c.advance(10 * time.Second)
	api.heldBy("other", c.t) // the holder renews: the wait starts again when the change is seen
	if held, _ := e.tryAcquireOrRenew(ctx); held {
		t.Fatal("took a Lease its holder had just renewed")
	}
	c.advance(14 * time.Second)
	if held, _ := e.tryAcquireOrRenew(ctx); held {
		t.Fatal("took a Lease 14 s after its holder renewed it")
	}
	if e.fence.Holding() {
		t.Fatal("the fence is open without the Lease")
	}
	c.advance(time.Second)
	if held, err := e.tryAcquireOrRenew(ctx); !held || err != nil {
		t.Fatalf("15 s after the last change: held=%v err=%v; want the Lease", held, err)
	}
	s := api.lease.Spec
	if *s.HolderIdentity != "me" || *s.LeaseTransitions != 4 || !s.AcquireTime.Time.Equal(c.t) || *s.LeaseDurationSeconds != 15 {
		t.Errorf("record after taking over: %+v; want holder me, 4 transitions, acquired now, 15 s", s)
	}
	if !e.fence.Holding() {
		t.Error("the fence is closed although the session holds the Lease")
	}
}

func TestElectorTakesARecordInItsOwnNameAtOnceKeepingItsHistory(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	api := &memLease{}
	acquired := c.t.Add(-time.Minute)
	api.heldBy("me", acquired)
	e := newTestElector(api, c)

	if held, err := e.tryAcquireOrRenew(context.Background()); !held || err != nil {
		t.Fatalf("held=%v err=%v; a Lease in the session's own name is taken at once", held, err)
	}
	s := api.lease.Spec
	if *s.LeaseTransitions != 3 || !s.AcquireTime.Time.Equal(acquired) || !s.RenewTime.Time.Equal(c.t) {
		t.Errorf("record: %+v; want transitions and acquireTime kept, renewTime now", s)
	}
}

func TestElectorRenewsWithOneWriteAndRecoversFromAConflictInTheSameAttempt(t *testing.T) {
	e, api, c := holding(t)
	ctx := context.Background()

	c.advance(9 * time.Second)
	gets, updates := api.gets, api.updates
	if held, err := e.tryAcquireOrRenew(ctx); !held || err != nil {
		t.Fatalf("renewal: held=%v err=%v", held, err)
	}
	if api.gets != gets || api.updates != updates+1 {
		t.Errorf("renewal made %d reads and %d writes; want 0 and 1", api.gets-gets, api.updates-updates)
	}

	// A write of the same record landed in between (say, a renewal sent just before a
	// restart of the loop): the holder must not wait a whole RetryPeriod for its next renewal.
	c.advance(9 * time.Second)
	api.conflictUpdates = 1
	if held, err := e.tryAcquireOrRenew(ctx); !held || err != nil {
		t.Fatalf("renewal after a conflict: held=%v err=%v; want renewed in the same attempt", held, err)
	}
	if !api.lease.Spec.RenewTime.Time.Equal(c.t) {
		t.Errorf("renewTime %s; want %s", api.lease.Spec.RenewTime.Time, c.t)
	}
}

func TestElectorLosesTheLeaseWhenSomeoneElseTookIt(t *testing.T) {
	e, api, c := holding(t)
	ctx := context.Background()
	c.advance(9 * time.Second)
	api.heldBy("other", c.t)
	if held, err := e.tryAcquireOrRenew(ctx); held || err != nil {
		t.Fatalf("held=%v err=%v; want false, nil: the Lease is someone else's", held, err)
	}
	if got := *api.lease.Spec.HolderIdentity; got != "other" {
		t.Errorf("holder %q after the failed renewal; the other holder's record must stand", got)
	}
}

func TestElectorReleaseClosesTheClientFirstAndGivesUpOnlyItsOwnLease(t *testing.T) {
	e, api, c := holding(t)
	ctx := context.Background()
	closedBeforeWrite := false
	e.fence.Guard(func() { closedBeforeWrite = api.updates == 1 })
	// A renewal that was in flight lands first: the release retries on the conflict.
	api.conflictUpdates = 1

	if err := e.Release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	if !closedBeforeWrite {
		t.Error("the client was not closed before the release was written")
	}
	s := api.lease.Spec
	if *s.HolderIdentity != "" || *s.LeaseDurationSeconds != 1 || *s.LeaseTransitions != 4 {
		t.Errorf("released record: %+v; want an empty holder, 1 s, transitions kept", s)
	}

	// Someone else's Lease is never written.
	api.heldBy("other", c.t)
	updates := api.updates
	if err := e.Release(ctx); err != nil || api.updates != updates {
		t.Errorf("release of someone else's Lease: err=%v, %d writes; want none", err, api.updates-updates)
	}
}

func TestElectorNeverTakesTheLeaseBackOnceItsRenewDeadlinePassed(t *testing.T) {
	e, api, c := holding(t)
	// Frozen past the renew deadline (11 s here); meanwhile the controller found the Lease
	// standing still and released it for a successor.
	c.advance(12 * time.Second)
	api.heldBy("", c.t)
	updates := api.updates
	held, err := e.tryAcquireOrRenew(context.Background())
	if held || !errors.Is(err, ErrRenewDeadline) {
		t.Fatalf("held=%v err=%v; want false, ErrRenewDeadline", held, err)
	}
	if api.updates != updates {
		t.Errorf("%d Lease writes after the renew deadline; want none", api.updates-updates)
	}
	if e.fence.Holding() {
		t.Error("the fence holds after the renew deadline")
	}
	// A write that was sent late (it started after the deadline) does not revive the fence.
	e.fence.renewed(c.t)
	if e.fence.Holding() {
		t.Error("a renewal started after the renew deadline revived the fence")
	}
}
