package session

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

var (
	// ErrLeaseLost: another session may lead now; this one closed its client and must exit.
	ErrLeaseLost = errors.New("lost the session Lease")
	// ErrRenewDeadline: no renewal succeeded within the renew deadline (API traffic cut, API
	// server down); the client was closed before the Lease could expire for anyone else.
	ErrRenewDeadline = errors.New("no Lease renewal within the renew deadline")
)

// awaitLease blocks until this session holds the Lease, reading it every StandbyPoll. It is a
// separate elector from the one that renews because client-go uses one period for both: a
// standby that read only every RetryPeriod (with client-go's jitter, up to 2.2 ×) would notice
// an expired Lease far later than the failover target. Reads are cheap; only the leader writes.
func (r *Runtime) awaitLease(ctx context.Context, lock resourcelock.Interface) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var acquired atomic.Bool
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          lock,
		Name:          r.cfg.LeaseName,
		LeaseDuration: r.cfg.LeaseDuration,
		RenewDeadline: r.cfg.RenewDeadline,
		RetryPeriod:   r.cfg.StandbyPoll,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { acquired.Store(true); cancel() },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return false, err
	}
	le.Run(ctx)
	return acquired.Load(), nil
}

// holdLease renews the Lease (already ours: the elector takes a Lease it holds at once) and
// runs work on the elector's context, so that the work ends when leadership does. The client
// is closed before the Lease is released (fencedLock) and again, as a hard stop, when client-go
// reports the loss. It returns nil only when ctx ended (SIGTERM).
func (r *Runtime) holdLease(ctx context.Context, lock resourcelock.Interface, work func(context.Context) error) error {
	leadCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            r.cfg.LeaseName,
		LeaseDuration:   r.cfg.LeaseDuration,
		RenewDeadline:   r.cfg.RenewDeadline,
		RetryPeriod:     r.cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				r.metrics.leaseTransitions.WithLabelValues("acquired").Inc()
				stop(work(lctx))
			},
			OnStoppedLeading: func() {
				r.fence.close()
				r.metrics.leaseTransitions.WithLabelValues("lost").Inc()
			},
		},
	})
	if err != nil {
		return err
	}
	le.Run(leadCtx)
	r.fence.close()
	if cause := context.Cause(leadCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if ctx.Err() != nil {
		return nil
	}
	return ErrLeaseLost
}

// watchdog closes the client when the renew deadline passes without a successful renewal,
// before client-go notices (it may take RetryPeriod + RenewDeadline) and well before the
// Lease expires for the others.
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

func metaFor(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace}
}
