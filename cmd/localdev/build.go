package main

import (
	"context"
	"os"
	"os/exec"
	"time"
)

// buildSession builds the session binary the runner executes for a pod's /session command.
// The fakewa tag is what lets a session talk to the fake server at all; the default build can
// only reach the real WhatsApp.
func buildSession(ctx context.Context, moduleRoot, out string, fake bool) error {
	args := []string{"build", "-o", out}
	if fake {
		args = append(args, "-tags", "fakewa")
	}
	args = append(args, "./cmd/session")
	logger.Info("building the session binary", "args", args)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// An interrupt lets go build stop its compiler processes; a kill would orphan them.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	return cmd.Run()
}
