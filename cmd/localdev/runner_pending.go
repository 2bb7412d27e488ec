package main

import (
	"context"

	"k8s.io/client-go/rest"
)

// Until internal/localrunner lands: a runner that runs nothing.
type pendingRunner struct{}

func (pendingRunner) Start(ctx context.Context) error { <-ctx.Done(); return nil }

func newRunner(_ *rest.Config, _, _ string, _ []string) (interface{ Start(context.Context) error }, error) {
	return pendingRunner{}, nil
}
