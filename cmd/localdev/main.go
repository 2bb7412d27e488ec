// Command localdev is what `make run` starts when no cluster is reachable (or LOCAL=1): an
// embedded kube-apiserver and etcd with the CRDs, the controller, and the local pod runner that
// runs session pods as processes on this machine; with -fake-whatsapp also the fake WhatsApp
// server, so that everything works offline. With -probe it only tells hack/run.sh whether the
// cluster of the current kubeconfig answers.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

func main() {
	var o options
	probe := flag.Bool("probe", false,
		"Start nothing: exit 0 when the cluster of the current kubeconfig answers within 3 s, 1 otherwise.")
	flag.StringVar(&o.Dir, "dir", ".local", "State directory: kubeconfig, binaries, pod volumes (run/ is wiped at each start).")
	flag.StringVar(&o.ModuleRoot, "module-root", ".", "Root of the operator's Go module, where cmd/session is built from.")
	flag.StringVar(&o.Assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"),
		"Directory with kube-apiserver and etcd, as hack/envtest-binaries.sh prints it (default $KUBEBUILDER_ASSETS).")
	flag.BoolVar(&o.FakeWhatsApp, "fake-whatsapp", os.Getenv("FAKE_WHATSAPP") == "1",
		"Run the fake WhatsApp server in-process and point sessions at it (default $FAKE_WHATSAPP=1).")
	flag.StringVar(&o.FakeControlAddr, "fake-control", "127.0.0.1:8089", "Loopback address of the fake WhatsApp control API.")
	flag.StringVar(&o.SessionBinary, "session-binary", "",
		"A session binary built beforehand (with the fakewa tag when -fake-whatsapp); empty: build ./cmd/session at start.")
	zapOpts := zap.Options{Development: true}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	if *probe {
		// The loader logs each config source it fails to find; the one-line reason is enough.
		ctrl.SetLogger(logr.Discard())
		if err := probeCluster(); err != nil {
			fmt.Fprintln(os.Stderr, "no reachable cluster:", err)
			os.Exit(1)
		}
		return
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	if o.Assets == "" {
		fmt.Fprintln(os.Stderr, "localdev: -assets (or $KUBEBUILDER_ASSETS) must name the kube-apiserver and etcd directory; `make run` passes it")
		os.Exit(2)
	}

	// Not ctrl.SetupSignalHandler: its second signal exits at once, which would leave the
	// control plane (in its own process group, so Ctrl-C does not reach it) running. Here
	// further signals are ignored until everything has stopped. SIGHUP: a closed terminal.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	o.Out = os.Stdout
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "localdev:", err)
		stop()
		os.Exit(1)
	}
}
