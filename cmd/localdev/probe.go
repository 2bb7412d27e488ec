package main

import (
	"errors"
	"time"

	"k8s.io/client-go/discovery"
	ctrl "sigs.k8s.io/controller-runtime"
)

// probeTimeout bounds how long `make run` waits for a cluster before it goes local.
const probeTimeout = 3 * time.Second

// probeCluster asks the API server of the configuration the manager would use (ctrl.GetConfig:
// --kubeconfig, $KUBECONFIG, in-cluster, ~/.kube/config) for its version.
func probeCluster() error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	cfg.Timeout = probeTimeout
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	// An exec credential plugin can hang outside the HTTP timeout; the select bounds it too.
	done := make(chan error, 1)
	go func() {
		_, err := dc.ServerVersion()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(probeTimeout):
		return errors.New("no answer within " + probeTimeout.String())
	}
}
