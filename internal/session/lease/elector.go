package lease

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var (
	// ErrLost: another session may lead now; this one closed its client and must exit.
	ErrLost = errors.New("lost the session Lease")
	// ErrRenewDeadline: no renewal succeeded within the renew deadline (API traffic cut, API
	// server down); the client was closed before the Lease could expire for anyone else.
	ErrRenewDeadline = errors.New("no Lease renewal within the renew deadline")
)

// Client is the session's access to its Lease: get and update, as its Role allows. The
// controller creates the Lease before the pod.
type Client interface {
	GetLease(ctx context.Context) (*coordinationv1.Lease, error)
	UpdateLease(ctx context.Context, lease *coordinationv1.Lease) (*coordinationv1.Lease, error)
}

// Timings are the elector's; their defaults and the rules between them are the
// controller–session contract's (internal/sessionenv), checked by the session's Config.
type Timings struct {
	// Duration is the Lease duration written in the record: how long others wait, on their own
	// clock, after they last saw it change.
	Duration time.Duration
	// RenewDeadline bounds how long the holder may go without a successful renewal; the fence
	// holds it (NewFence) and Hold bounds a release by it.
	RenewDeadline time.Duration
	// RetryPeriod is the holder's renewal interval.
	RetryPeriod time.Duration
	// StandbyPoll is how often a standby reads the Lease, and how soon a failed renewal is
	// tried again.
	StandbyPoll time.Duration
	// RequestTimeout bounds one Lease read or write.
	RequestTimeout time.Duration
}

// Transition values passed to Options.Transitions.
const (
	Acquired = "acquired"
	Lost     = "lost"
)

// Options are an Elector's identity, timings and hooks.
type Options struct {
	// Identity is the holderIdentity this session writes (sessionenv.LeaseIdentity).
	Identity string
	Timings  Timings
	// Fence is told of every renewal and closed before a release.
	Fence *Fence
	Log   logr.Logger
	// Writes is called before each Lease write is sent (nil: nothing).
	Writes func()
	// Transitions is called with Acquired when Hold starts and Lost when it ends for another
	// reason than its context (nil: nothing).
	Transitions func(transition string)
}

// Elector takes and keeps the Lease by client-go's leader election rules and writes the same
// record, so the controller, kubectl and client-go agree on who holds it:
//   - a Lease held by someone else is taken only after it has not changed for its
//     leaseDurationSeconds by this process's clock (renewTime comes from another node's clock
//     and is never compared);
//   - a Lease that names this session's identity (pod name and UID: this very pod) is taken at
//     once; a predecessor with the same pod name is another identity and waits like anyone;
//   - the holder renews over the version it last wrote, and reads only when that fails;
//   - a release writes an empty holder with a 1 s duration.
//
// It reports every renewal to the fence and closes it before a release. One goroutine uses it
// at a time: Acquire, then Hold (which renews, then releases).
type Elector struct {
	api         Client
	identity    string
	timings     Timings
	fence       *Fence
	log         logr.Logger
	writes      func()
	transitions func(string)
	now         func() time.Time

	lease  *coordinationv1.Lease // as last read or written
	seenAt time.Time             // when lease.Spec was last seen to change
}

// NewElector makes an elector for the Lease that c reads and writes.
func NewElector(c Client, o Options) *Elector {
	e := &Elector{api: c, identity: o.Identity, timings: o.Timings, fence: o.Fence, log: o.Log,
		writes: o.Writes, transitions: o.Transitions, now: time.Now}
	if e.writes == nil {
		e.writes = func() {}
	}
	if e.transitions == nil {
		e.transitions = func(string) {}
	}
	return e
}

func holderOf(l *coordinationv1.Lease) string { return ptr.Deref(l.Spec.HolderIdentity, "") }

func (e *Elector) holds() bool { return e.lease != nil && holderOf(e.lease) == e.identity }

func (e *Elector) unexpired(now time.Time) bool {
	d := time.Duration(ptr.Deref(e.lease.Spec.LeaseDurationSeconds, 0)) * time.Second
	return now.Before(e.seenAt.Add(d))
}

// tryAcquireOrRenew makes one attempt and reports whether this session holds the Lease after
// it. false with a nil error means someone else holds it.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) (bool, error) {
	now := e.now()
	if e.fence.Lapsed(now) {
		// Past the renew deadline (frozen, or cut off until now): the controller may have
		// released this Lease for a successor, which must not be taken back.
		return false, ErrRenewDeadline
	}
	if e.holds() && e.unexpired(now) {
		if err := e.write(ctx, e.lease, e.record(e.lease, now), now); err == nil {
			return true, nil
		}
		// A conflict (another writer of the same record) or a failed request: read and decide
		// again in this same attempt, not a RetryPeriod later.
	}
	current, err := e.api.GetLease(ctx)
	if err != nil {
		return false, err
	}
	if e.lease == nil || !equality.Semantic.DeepEqual(current.Spec, e.lease.Spec) {
		e.seenAt = now
	}
	e.lease = current
	if h := holderOf(current); h != "" && h != e.identity && e.unexpired(now) {
		return false, nil
	}
	if err := e.write(ctx, current, e.record(current, now), now); err != nil {
		return false, err
	}
	return true, nil
}

// record is the spec that takes or renews current at now.
func (e *Elector) record(current *coordinationv1.Lease, now time.Time) coordinationv1.LeaseSpec {
	at := metav1.NewMicroTime(now)
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(e.identity),
		LeaseDurationSeconds: ptr.To(int32(e.timings.Duration / time.Second)),
		AcquireTime:          &at,
		RenewTime:            &at,
		LeaseTransitions:     ptr.To(ptr.Deref(current.Spec.LeaseTransitions, 0)),
	}
	if holderOf(current) == e.identity {
		if current.Spec.AcquireTime != nil {
			spec.AcquireTime = current.Spec.AcquireTime
		}
	} else {
		*spec.LeaseTransitions++
	}
	return spec
}

// write updates base to spec. A write that names this session counts as a renewal from start,
// when it was sent: the API server may have stored it any time after.
func (e *Elector) write(ctx context.Context, base *coordinationv1.Lease, spec coordinationv1.LeaseSpec, start time.Time) error {
	next := base.DeepCopy()
	next.Spec = spec
	e.writes()
	out, err := e.api.UpdateLease(ctx, next)
	if err != nil {
		return err
	}
	e.lease, e.seenAt = out, start
	if holderOf(out) == e.identity {
		e.fence.renewed(start)
	}
	return nil
}

// Release gives the Lease up, if this session still holds it, so that a successor need not
// wait for it to expire. The client is closed first: once the write is sent the Lease may be
// someone else's.
func (e *Elector) Release(ctx context.Context) error {
	e.fence.Close()
	for {
		current, err := e.api.GetLease(ctx)
		if err != nil || holderOf(current) != e.identity {
			return err
		}
		now := e.now()
		at := metav1.NewMicroTime(now)
		err = e.write(ctx, current, coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(""),
			LeaseDurationSeconds: ptr.To[int32](1),
			AcquireTime:          &at,
			RenewTime:            &at,
			LeaseTransitions:     current.Spec.LeaseTransitions,
		}, now)
		// A conflict: a renewal that was in flight when the session was told to stop landed.
		if !apierrors.IsConflict(err) || ctx.Err() != nil {
			return err
		}
	}
}
