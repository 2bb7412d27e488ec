package localrunner_test

import (
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/waoperator/whatsapp-operator/internal/localrunner"
)

// A manager that also runs its session pods as local processes: the runner is one more
// Runnable, started with the manager and stopped (with all its processes) when it stops.
func Example() {
	cfg := ctrl.GetConfigOrDie() // the bare API server's admin config: it must be allowed to impersonate
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{})
	if err != nil {
		os.Exit(1)
	}
	runner, err := localrunner.New(cfg, localrunner.Options{
		NodeName: "local",
		WorkDir:  "/tmp/whatsapp-operator",
		Commands: map[string]string{"/session": "bin/session"},
		ExtraEnv: []string{"WAOPERATOR_FAKEWA_CONFIG=/tmp/fakewa.json"},
		Logger:   ctrl.Log.WithName("runner"),
	})
	if err != nil {
		os.Exit(1)
	}
	if err := mgr.Add(runner); err != nil {
		os.Exit(1)
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		os.Exit(1)
	}
}
