package main

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/controllers"
)

// localSessionImage is never pulled: the runner maps the pod's /session command to the local
// build. It is only what `kubectl get pod -o yaml` shows.
const localSessionImage = "local/whatsapp-operator:dev"

// newManager is cmd/manager's setup with its flag defaults, minus what a single local process
// does not need: leader election, metrics and probe endpoints (their ports could clash with a
// manager already running on this machine).
func newManager(ctx context.Context, cfg *rest.Config) (ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(whatsappv1alpha1.AddToScheme(scheme))
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, err
	}
	// The manager's own defaults, with a session image the local runner maps to the local build.
	opts := controllers.DefaultOptions()
	opts.Session.Image = localSessionImage
	r := controllers.NewReconciler(mgr, opts)
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return nil, err
	}
	return mgr, nil
}
