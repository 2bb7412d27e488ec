package whatsapp_test

import (
	"context"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
)

// openConnected opens the session's client with opener, reads and drops its events (a test that
// watches them opens the client itself) and connects it. Closing it is the caller's.
func openConnected(ctx context.Context, g Gomega, opener whatsapp.Opener) session.Client {
	cli, err := opener.Open(ctx, logr.Discard(), func(error) bool { return true })
	g.Expect(err).NotTo(HaveOccurred())
	go func() {
		for range cli.Events() {
		}
	}()
	g.Expect(cli.Connect(ctx)).To(Succeed())
	return cli
}
