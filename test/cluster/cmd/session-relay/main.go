// Command session-relay is the entry point of the real-cluster tests' session image (never of
// the operator's image): it runs the fakewa build of the session (/session-fakewa) with the
// arguments the controller gave, and carries the session's WhatsApp connections from the
// pod's loopback, the only address the fakewa build dials, to the fake server the test runs on
// the host (FAKEWA_RELAY_TARGET, an address on the node). The session itself is unchanged: it
// still refuses any non-loopback endpoint.
//
// Environment (set in the test image's config): FAKEWA_RELAY_LISTEN (127.0.0.1:PORT, the
// address in the session's fakewa client config), FAKEWA_RELAY_TARGET (NODE_IP:PORT).
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/waoperator/whatsapp-operator/test/cluster/internal/relay"
)

func main() {
	listen, target := os.Getenv("FAKEWA_RELAY_LISTEN"), os.Getenv("FAKEWA_RELAY_TARGET")
	if listen == "" || target == "" {
		fmt.Fprintln(os.Stderr, "session-relay: FAKEWA_RELAY_LISTEN and FAKEWA_RELAY_TARGET must be set")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "session-relay:", err)
		os.Exit(2)
	}
	go relay.Serve(ln, target, func(err error) { fmt.Fprintln(os.Stderr, "session-relay:", err) })

	cmd := exec.Command("/session-fakewa", os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "session-relay:", err)
		os.Exit(2)
	}
	// The kubelet's SIGTERM is the session's: it logs out or releases its Lease on it.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for s := range sig {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.ExitCode())
	case err != nil:
		fmt.Fprintln(os.Stderr, "session-relay:", err)
		os.Exit(1)
	}
}
