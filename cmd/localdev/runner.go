package main

import (
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/waoperator/whatsapp-operator/internal/localrunner"
)

// newRunner plays node, scheduler and kubelet for the session pods: the controller's
// `/session` command becomes the local build.
func newRunner(cfg *rest.Config, workDir, sessionBin string, extraEnv []string) (*localrunner.Runner, error) {
	return localrunner.New(cfg, localrunner.Options{
		NodeName: "local",
		WorkDir:  workDir,
		Commands: map[string]string{"/session": sessionBin},
		ExtraEnv: extraEnv,
		Logger:   ctrl.Log.WithName("runner"),
	})
}
