// Command kubectl-whatsapp is a kubectl plugin for whatsapp-operator: put it on PATH and run
// kubectl whatsapp qr|pair|status|reconnect|logout.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/waoperator/whatsapp-operator/internal/plugin"
)

func main() {
	// Ctrl-C ends a --watch cleanly instead of killing it mid-frame.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := plugin.NewCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}).ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}
