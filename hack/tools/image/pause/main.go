// Command pause is the pod sandbox process of the test cluster (hack/cluster.sh): it holds the
// pod's namespaces and waits for SIGTERM or SIGINT, like Kubernetes' own pause image, which
// cannot be pulled here.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
