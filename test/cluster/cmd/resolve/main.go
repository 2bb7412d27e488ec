// Command resolve is in the real-cluster tests' session image (never in the operator's) so that
// `kubectl exec` can ask a pod's own resolver, with the pod's /etc/resolv.conf as the kubelet
// wrote it, what a name resolves to: the suite's check that pods reach Services by name.
//
// Usage: resolve NAME   (prints the addresses, one a line; exit 1 when the lookup fails)
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: resolve NAME")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The pure Go resolver (a static binary): it reads /etc/resolv.conf, search list and ndots.
	addrs, err := net.DefaultResolver.LookupHost(ctx, os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "resolve:", err)
		os.Exit(1)
	}
	for _, a := range addrs {
		fmt.Println(a)
	}
}
