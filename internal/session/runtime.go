package session

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// Runtime is one session process: it waits for the Lease, then runs the state machine while it
// holds it.
type Runtime struct {
	cfg     Config
	log     logr.Logger
	metrics *metrics
	fence   *fence
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
	c, err := r.apiClient()
	if err != nil {
		return err
	}
	coord, err := coordinationv1client.NewForConfig(r.cfg.REST)
	if err != nil {
		return err
	}
	lock := &fencedLock{
		Interface: &resourcelock.LeaseLock{
			LeaseMeta:  metaFor(r.cfg.LeaseName, r.cfg.Namespace),
			Client:     coord,
			LockConfig: resourcelock.ResourceLockConfig{Identity: r.cfg.PodName},
		},
		fence:  r.fence,
		writes: r.metrics.leaseWrites.Inc,
	}
	r.log.Info("waiting for the session Lease", "lease", r.cfg.LeaseName, "identity", r.cfg.PodName)
	acquired, err := r.awaitLease(ctx, lock)
	if err != nil || !acquired {
		return err
	}
	r.log.Info("holding the session Lease")
	return r.holdLease(ctx, lock, func(ctx context.Context) error { return r.lead(ctx, c) })
}

// lead is the work guarded by the Lease: open the store and the client, watch the resource and
// run the state machine, until the Lease (or the renew deadline) ends it.
func (r *Runtime) lead(ctx context.Context, c client.WithWatch) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go r.watchdog(ctx, stop)

	pub := &statusPublisher{client: c, name: r.cfg.ConnectionName, namespace: r.cfg.Namespace,
		holder: whatsappv1alpha1.Holder{Pod: r.cfg.PodName, UID: r.cfg.PodUID}, fence: r.fence}
	m := newMachine(r.cfg, pub, r.metrics, r.log.WithName("machine"))
	cli, err := r.cfg.OpenClient(ctx, r.log.WithName("whatsapp"), m.shouldReconnect)
	if err != nil {
		m.storeErr = err
		r.log.Error(err, "cannot open the device store")
	} else {
		m.cli = cli
		r.fence.guard(func() {
			if err := cli.Close(); err != nil {
				r.log.Error(err, "closing the WhatsApp client")
			}
		})
	}
	r.machine.Store(m)

	resources := make(chan *whatsappv1alpha1.WhatsAppConnection, 1)
	key := client.ObjectKey{Namespace: r.cfg.Namespace, Name: r.cfg.ConnectionName}
	go watchConnection(ctx, c, key, resources, r.cfg.StandbyPoll, r.log.WithName("watch"))
	m.run(ctx, resources)
	if cause := context.Cause(ctx); errors.Is(cause, ErrRenewDeadline) {
		return cause
	}
	return nil
}

// apiClient knows only the session's own kind, so it needs no discovery (which a session's
// Role would not cover anyway).
func (r *Runtime) apiClient() (client.WithWatch, error) {
	scheme := runtime.NewScheme()
	if err := whatsappv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{whatsappv1alpha1.GroupVersion})
	mapper.Add(whatsappv1alpha1.GroupVersion.WithKind("WhatsAppConnection"), meta.RESTScopeNamespace)
	return client.NewWithWatch(r.cfg.REST, client.Options{Scheme: scheme, Mapper: mapper})
}
