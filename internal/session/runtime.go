package session

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/go-logr/logr"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// Runtime is one session process: it waits for the Lease, then runs the state machine while it
// holds it.
type Runtime struct {
	cfg     Config
	log     logr.Logger
	metrics *metrics
	fence   fence
	machine atomic.Pointer[machine]
}

// New checks cfg and fills its defaults.
func New(cfg Config, log logr.Logger) (*Runtime, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Runtime{cfg: cfg, log: log, metrics: newMetrics(), fence: newFence(cfg.RenewDeadline)}, nil
}

// Ready is true while the session holds the Lease and is logged in.
func (r *Runtime) Ready() bool {
	m := r.machine.Load()
	return m != nil && r.fence.holding() && m.connected.Load()
}

// Run returns nil when ctx ends (SIGTERM: client closed, Lease released, nothing logged out),
// and an error when the Lease was lost or could not be renewed in time, after the client has
// been closed: the process must exit non-zero so that a fresh pod replaces it.
func (r *Runtime) Run(ctx context.Context) error {
	if err := r.serve(ctx, r.log); err != nil {
		return err
	}
	api, err := newAPIClient(r.cfg.REST, r.cfg.Namespace, r.cfg.LeaseName, r.cfg.ConnectionName)
	if err != nil {
		return err
	}
	return r.holdLease(ctx, api, func(ctx context.Context) error { return r.lead(ctx, api) })
}

// lead is the work guarded by the Lease: open the store and the client, watch the resource and
// run the state machine, until the Lease (or the renew deadline) ends it.
func (r *Runtime) lead(ctx context.Context, api *apiClient) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go r.fence.Watchdog(ctx, stop, r.log)
	go watchStoreSecret(ctx, r.cfg, r.log, stop)

	pub := &statusPublisher{api: api, holder: whatsappv1alpha1.Holder{Pod: r.cfg.PodName, UID: r.cfg.PodUID}, fence: r.fence}
	m := newMachine(r.cfg, pub, r.metrics, r.log.WithName("machine"))
	m.open = func(ctx context.Context) (Client, error) {
		cli, err := r.cfg.OpenClient(ctx, r.log.WithName("whatsapp"), m.shouldReconnect)
		if err != nil {
			return nil, err
		}
		r.fence.Guard(func() {
			if err := cli.Close(); err != nil {
				r.log.Info("closing the WhatsApp client", "error", logText(err))
			}
		})
		return cli, nil
	}
	// The resource is read while the store opens: the machine needs both before it can show a
	// QR code, and neither waits for the other (start → QR in status, docs/benchmarks.md).
	resources := make(chan *whatsappv1alpha1.WhatsAppConnection, 1)
	go followConnection(ctx, api, resources, r.cfg.StandbyPoll, r.log.WithName("watch"))
	if cli, err := m.open(ctx); err != nil {
		m.storeErr = err // reported, and retried, once the machine runs
	} else {
		m.cli = cli
	}
	r.machine.Store(m)

	m.run(ctx, resources)
	if cause := context.Cause(ctx); errors.Is(cause, ErrRenewDeadline) || errors.Is(cause, ErrStoreSecretChanged) {
		return cause
	}
	return nil
}
