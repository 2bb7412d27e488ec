package session

import (
	"context"
	"errors"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var (
	// ErrLeaseLost: another session may lead now; this one closed its client and must exit.
	ErrLeaseLost = errors.New("lost the session Lease")
	// ErrRenewDeadline: no renewal succeeded within the renew deadline (API traffic cut, API
	// server down); the client was closed before the Lease could expire for anyone else.
	ErrRenewDeadline = errors.New("no Lease renewal within the renew deadline")
)

// leaseAPI is the session's access to its Lease: get and update, as its Role allows. The
// controller creates the Lease before the pod.
type leaseAPI interface {
	getLease(ctx context.Context) (*coordinationv1.Lease, error)
	updateLease(ctx context.Context, lease *coordinationv1.Lease) (*coordinationv1.Lease, error)
}

// elector takes and keeps the Lease by client-go's leader election rules and writes the same
// record, so the controller, kubectl and client-go agree on who holds it:
//   - a Lease held by someone else is taken only after it has not changed for its
//     leaseDurationSeconds by this process's clock (renewTime comes from another node's clock
//     and is never compared);
//   - a Lease that names this session's identity (pod name and UID: this very pod) is taken at
//     once; a predecessor with the same pod name is another identity and waits like anyone;
//   - the holder renews over the version it last wrote, and reads only when that fails;
//   - a release writes an empty holder with a 1 s duration.
//
// It is not client-go's elector because that one links the typed clientset (see apiClient) and
// does not fence; this one reports every renewal to the fence and closes it before a release.
// One goroutine uses it at a time: awaitLease, then renew, then release.
type elector struct {
	api      leaseAPI
	identity string
	duration time.Duration
	fence    *fence
	writes   func()
	now      func() time.Time

	lease  *coordinationv1.Lease // as last read or written
	seenAt time.Time             // when lease.Spec was last seen to change
}

func holderOf(l *coordinationv1.Lease) string { return ptr.Deref(l.Spec.HolderIdentity, "") }

func (e *elector) holds() bool { return e.lease != nil && holderOf(e.lease) == e.identity }

func (e *elector) unexpired(now time.Time) bool {
	d := time.Duration(ptr.Deref(e.lease.Spec.LeaseDurationSeconds, 0)) * time.Second
	return now.Before(e.seenAt.Add(d))
}

// tryAcquireOrRenew makes one attempt and reports whether this session holds the Lease after
// it. false with a nil error means someone else holds it.
func (e *elector) tryAcquireOrRenew(ctx context.Context) (bool, error) {
	now := e.now()
	if e.fence.lapsed(now) {
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
	current, err := e.api.getLease(ctx)
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
func (e *elector) record(current *coordinationv1.Lease, now time.Time) coordinationv1.LeaseSpec {
	at := metav1.NewMicroTime(now)
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(e.identity),
		LeaseDurationSeconds: ptr.To(int32(e.duration / time.Second)),
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
func (e *elector) write(ctx context.Context, base *coordinationv1.Lease, spec coordinationv1.LeaseSpec, start time.Time) error {
	next := base.DeepCopy()
	next.Spec = spec
	e.writes()
	out, err := e.api.updateLease(ctx, next)
	if err != nil {
		return err
	}
	e.lease, e.seenAt = out, start
	if holderOf(out) == e.identity {
		e.fence.renewed(start)
	}
	return nil
}

// release gives the Lease up, if this session still holds it, so that a successor need not
// wait for it to expire. The client is closed first: once the write is sent the Lease may be
// someone else's.
func (e *elector) release(ctx context.Context) error {
	e.fence.close()
	for {
		current, err := e.api.getLease(ctx)
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

// awaitLease blocks until this session holds the Lease, reading it every StandbyPoll rather
// than every RetryPeriod, so that a standby notices an expired Lease within the failover
// target. Reads are cheap; only the holder writes.
func (r *Runtime) awaitLease(ctx context.Context, e *elector) bool {
	for {
		attempt, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
		held, err := e.tryAcquireOrRenew(attempt)
		cancel()
		if held {
			return true
		}
		if err != nil && ctx.Err() == nil {
			r.log.V(1).Info("cannot take the session Lease yet", "error", err.Error())
		}
		if sleep(ctx, r.cfg.StandbyPoll); ctx.Err() != nil {
			return false
		}
	}
}

// holdLease runs work on a context that ends when the Lease does, renewing it meanwhile. The
// client is closed before the Lease is released, and the Lease is released on the way out
// whatever the reason. It returns nil only when ctx ended (SIGTERM).
func (r *Runtime) holdLease(ctx context.Context, e *elector, work func(context.Context) error) error {
	r.metrics.leaseTransitions.WithLabelValues("acquired").Inc()
	leadCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	worked := make(chan struct{})
	go func() {
		defer close(worked)
		stop(work(leadCtx))
	}()
	if err := r.renew(leadCtx, e); err != nil {
		stop(err)
	}
	r.fence.close()
	<-worked

	// A session that lapsed (no renewal within the renew deadline) cannot reach the API server
	// or was frozen: one bounded attempt, then exit so that the kubelet's report replaces it;
	// the Lease is judged expired by others anyway. Otherwise (SIGTERM, a lost Lease) take the
	// time a release needs.
	releaseWithin := r.cfg.RenewDeadline
	if errors.Is(context.Cause(leadCtx), ErrRenewDeadline) {
		releaseWithin = r.cfg.RequestTimeout
	}
	releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseWithin)
	if err := e.release(releaseCtx); err != nil {
		r.log.Error(err, "could not release the session Lease; it expires on its own")
	}
	cancel()

	cause := context.Cause(leadCtx)
	switch {
	case cause != nil && !errors.Is(cause, context.Canceled):
	case ctx.Err() != nil:
		return nil
	default:
		cause = ErrLeaseLost
	}
	r.metrics.leaseTransitions.WithLabelValues("lost").Inc()
	return cause
}

// renew renews the Lease every RetryPeriod until ctx ends; it returns ErrLeaseLost when
// someone else holds it. A failed attempt is retried every StandbyPoll, not a RetryPeriod
// later, so that renewals resume within a second of an API server stall's end.
func (r *Runtime) renew(ctx context.Context, e *elector) error {
	next := r.cfg.RetryPeriod
	for {
		if sleep(ctx, next); ctx.Err() != nil {
			return nil
		}
		// Each attempt is bounded by RequestTimeout, not by the renew deadline: a request that a
		// stalled API server never answers must not use up the time left to retry.
		attempt, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
		held, err := e.tryAcquireOrRenew(attempt)
		cancel()
		switch {
		case held:
			next = r.cfg.RetryPeriod
		case errors.Is(err, ErrRenewDeadline):
			return err
		case err == nil:
			r.log.Info("the session Lease is held by another session", "holder", holderOf(e.lease))
			return ErrLeaseLost
		case ctx.Err() == nil:
			r.log.Info("Lease renewal failed; trying again", "error", err.Error())
			next = r.cfg.StandbyPoll
		}
	}
}

// watchdog closes the client when the renew deadline passes without a successful renewal,
// well before the Lease expires for the others.
func (r *Runtime) watchdog(ctx context.Context, stop context.CancelCauseFunc) {
	for {
		d := r.fence.expiresIn()
		if d <= 0 {
			r.log.Info("no Lease renewal within the renew deadline: dropping the WhatsApp connection", "renewDeadline", r.cfg.RenewDeadline)
			r.fence.close()
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
