package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/uncompressed"
)

// LeaderElectionID names the Lease manager replicas elect a leader with.
const LeaderElectionID = "whatsapp-operator.waoperator.io"

// ManagerOptions are everything a manager running the reconciler is made of, beyond the API
// server's address. The zero value (plus Reconciler) is a manager without endpoints or leader
// election, as a test or a local process runs it.
type ManagerOptions struct {
	// Reconciler configures the controller.
	Reconciler Options
	// Namespaces limits the manager to these namespaces (--watch-namespaces); empty: all.
	Namespaces []string
	// Metrics is the metrics endpoint; an empty BindAddress disables it (controller-runtime
	// would otherwise listen on :8080).
	Metrics metricsserver.Options
	// HealthProbeBindAddress serves /healthz and /readyz; empty: none.
	HealthProbeBindAddress string
	// LeaderElection elects one active replica (Lease LeaderElectionID in the manager's namespace).
	LeaderElection bool
	// PprofBindAddress serves Go's /debug/pprof (heap, CPU, goroutines) without authentication,
	// so it is for a loopback address or a port-forward only; empty: none.
	PprofBindAddress string
	// Tune, when set, changes the manager's options last: what only a test or a benchmark
	// needs (several managers in one process, a logger, a narrower cache).
	Tune func(*ctrl.Options)
}

// NewScheme has the kinds the manager reads and writes.
func NewScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(whatsappv1alpha1.AddToScheme(scheme))
	return scheme
}

// NewManager builds the one manager setup every entry point uses (cmd/manager, cmd/localdev,
// the benchmarks, the chaos suite, the envtest suites): the cache the reconciler is built for
// (CacheOptions), the reconciler with its watches, and health checks. Start it with Start.
func NewManager(ctx context.Context, cfg *rest.Config, o ManagerOptions) (ctrl.Manager, error) {
	metrics := o.Metrics
	if metrics.BindAddress == "" {
		metrics.BindAddress = "0"
	}
	cfg = uncompressed.Config(cfg) // see the package: ~1 ms of the API server's CPU per resource
	cacheBindings, err := mayWatchClusterRoleBindings(ctx, cfg)
	if err != nil {
		return nil, err
	}
	opts := ctrl.Options{
		Scheme:                        NewScheme(),
		Cache:                         CacheOptions(o.Namespaces...),
		Metrics:                       metrics,
		HealthProbeBindAddress:        o.HealthProbeBindAddress,
		PprofBindAddress:              o.PprofBindAddress,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionReleaseOnCancel: true,
	}
	if o.Tune != nil {
		o.Tune(&opts)
	}
	if cacheBindings {
		// After Tune: a test's own cache options still get the one kind whose cache depends on
		// the manager's rights.
		cacheOwnBindings(&opts.Cache)
	}
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		return nil, err
	}
	r := NewReconciler(mgr, o.Reconciler)
	r.bindingsCached = cacheBindings
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}
