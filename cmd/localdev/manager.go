package main

import (
	"context"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/waoperator/whatsapp-operator/controllers"
)

// localSessionImage is never pulled: the runner maps the pod's /session command to the local
// build. It is only what `kubectl get pod -o yaml` shows.
const localSessionImage = "local/whatsapp-operator:dev"

// newManager is cmd/manager's setup with its flag defaults, minus what a single local process
// does not need: leader election, metrics and probe endpoints (their ports could clash with a
// manager already running on this machine).
func newManager(ctx context.Context, cfg *rest.Config) (ctrl.Manager, error) {
	// The manager's own defaults, with a session image the local runner maps to the local build.
	opts := controllers.DefaultOptions()
	opts.Session.Image = localSessionImage
	return controllers.NewManager(ctx, cfg, controllers.ManagerOptions{Reconciler: opts})
}
