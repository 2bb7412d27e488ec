package lease

import (
	"context"
	"errors"

	"github.com/waoperator/whatsapp-operator/internal/session/ctxtime"
)

// Acquire blocks until this session holds the Lease, reading it every StandbyPoll rather than
// every RetryPeriod, so that a standby notices an expired Lease within the failover target.
// Reads are cheap; only the holder writes. It reports false when ctx ended first.
func (e *Elector) Acquire(ctx context.Context) bool {
	for {
		attempt, cancel := context.WithTimeout(ctx, e.timings.RequestTimeout)
		held, err := e.tryAcquireOrRenew(attempt)
		cancel()
		if held {
			return true
		}
		if err != nil && ctx.Err() == nil {
			e.log.V(1).Info("cannot take the session Lease yet", "error", err.Error())
		}
		if ctxtime.Sleep(ctx, e.timings.StandbyPoll) != nil {
			return false
		}
	}
}

// Hold runs work on a context that ends when the Lease does, renewing it meanwhile. The client
// is closed (the fence) before the Lease is released, and the Lease is released on the way out
// whatever the reason. It returns nil only when ctx ended (SIGTERM); otherwise the cause: work's
// error, ErrRenewDeadline or ErrLost.
func (e *Elector) Hold(ctx context.Context, work func(context.Context) error) error {
	e.transitions(Acquired)
	leadCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	worked := make(chan struct{})
	go func() {
		defer close(worked)
		stop(work(leadCtx))
	}()
	if err := e.renew(leadCtx); err != nil {
		stop(err)
	}
	e.fence.Close()
	<-worked

	// A session that lapsed (no renewal within the renew deadline) cannot reach the API server
	// or was frozen: one bounded attempt, then exit so that the kubelet's report replaces it;
	// the Lease is judged expired by others anyway. Otherwise (SIGTERM, a lost Lease) take the
	// time a release needs.
	releaseWithin := e.timings.RenewDeadline
	if errors.Is(context.Cause(leadCtx), ErrRenewDeadline) {
		releaseWithin = e.timings.RequestTimeout
	}
	releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseWithin)
	if err := e.Release(releaseCtx); err != nil {
		e.log.Error(err, "could not release the session Lease; it expires on its own")
	}
	cancel()

	cause := context.Cause(leadCtx)
	switch {
	case cause != nil && !errors.Is(cause, context.Canceled):
	case ctx.Err() != nil:
		return nil
	default:
		cause = ErrLost
	}
	e.transitions(Lost)
	return cause
}

// renew renews the Lease every RetryPeriod until ctx ends; it returns ErrLost when someone
// else holds it. A failed attempt is retried every StandbyPoll, not a RetryPeriod later, so
// that renewals resume within a second of an API server stall's end.
func (e *Elector) renew(ctx context.Context) error {
	next := e.timings.RetryPeriod
	for {
		if ctxtime.Sleep(ctx, next) != nil {
			return nil
		}
		// Each attempt is bounded by RequestTimeout, not by the renew deadline: a request that a
		// stalled API server never answers must not use up the time left to retry.
		attempt, cancel := context.WithTimeout(ctx, e.timings.RequestTimeout)
		held, err := e.tryAcquireOrRenew(attempt)
		cancel()
		switch {
		case held:
			next = e.timings.RetryPeriod
		case errors.Is(err, ErrRenewDeadline):
			return err
		case err == nil:
			e.log.Info("the session Lease is held by another session", "holder", holderOf(e.lease))
			return ErrLost
		case ctx.Err() == nil:
			e.log.Info("Lease renewal failed; trying again", "error", err.Error())
			next = e.timings.StandbyPoll
		}
	}
}
