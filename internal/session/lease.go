package session

import (
	"context"
	"time"

	"github.com/waoperator/whatsapp-operator/internal/session/lease"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

var (
	// ErrLeaseLost: another session may lead now; this one closed its client and must exit.
	ErrLeaseLost = lease.ErrLost
	// ErrRenewDeadline: no renewal succeeded within the renew deadline (API traffic cut, API
	// server down); the client was closed before the Lease could expire for anyone else.
	ErrRenewDeadline = lease.ErrRenewDeadline
)

// fence is the lease package's Fence as the session's status writers ask it: they write only
// while it holds.
type fence struct{ *lease.Fence }

func (f fence) holding() bool { return f.Holding() }

// holdLease waits for the Lease (a standby), then runs work while it holds it (package lease:
// renewals, the fence, the release). It returns nil when ctx ended, before or after.
func (r *Runtime) holdLease(ctx context.Context, api lease.Client, work func(context.Context) error) error {
	identity := sessionenv.LeaseIdentity(r.cfg.PodName, r.cfg.PodUID)
	e := lease.NewElector(api, lease.Options{
		Identity: identity,
		Timings: lease.Timings{Duration: r.cfg.LeaseDuration, RenewDeadline: r.cfg.RenewDeadline,
			RetryPeriod: r.cfg.RetryPeriod, StandbyPoll: r.cfg.StandbyPoll, RequestTimeout: r.cfg.RequestTimeout},
		Fence:       r.fence.Fence,
		Log:         r.log,
		Writes:      r.metrics.leaseWrites.Inc,
		Transitions: func(t string) { r.metrics.leaseTransitions.WithLabelValues(t).Inc() },
	})
	r.log.Info("waiting for the session Lease", "lease", r.cfg.LeaseName, "identity", identity)
	if !e.Acquire(ctx) {
		return nil
	}
	r.log.Info("holding the session Lease")
	return e.Hold(ctx, work)
}

// newFence is the fence of a runtime with these timings.
func newFence(renewDeadline time.Duration) fence { return fence{lease.NewFence(renewDeadline)} }
