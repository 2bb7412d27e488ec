// Command cluster-dns is the DNS server of the real-cluster test bed (hack/cluster.sh): it
// answers <service>.<namespace>.svc.<domain> with the Service's ClusterIP, from a watch of the
// Services, on the node IP that the kubelet gives pods as their nameserver (clusterDNS). It is
// the part of CoreDNS's kubernetes plugin that the test bed needs, and nothing more: A records
// for ClusterIP Services (kube-proxy translates them), authoritative NXDOMAIN for any other
// name in the domain (so a pod's search list falls through quickly), REFUSED for names outside
// it (no upstream is reachable here). Headless Services, SRV and PTR records are not served.
//
// Usage: cluster-dns --kubeconfig FILE --listen IP:53 [--domain cluster.local]
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/waoperator/whatsapp-operator/test/cluster/cmd/cluster-dns/zone"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of a user that may list and watch Services")
	listen := flag.String("listen", "", "address to serve DNS on, UDP and TCP (e.g. the node IP, port 53)")
	domain := flag.String("domain", "cluster.local", "the cluster's DNS domain (the kubelet's clusterDomain)")
	flag.Parse()
	if err := run(*kubeconfig, *listen, *domain); err != nil {
		fmt.Fprintln(os.Stderr, "cluster-dns:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, listen, domain string) error {
	if listen == "" {
		return errors.New("--listen is required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	factory := informers.NewSharedInformerFactory(cs, 0)
	services := factory.Core().V1().Services()
	lister := services.Lister()
	informer := services.Informer()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return errors.New("the Service cache did not sync")
	}

	z := zone.New(domain, func(namespace, name string) ([]string, bool) {
		s, err := lister.Services(namespace).Get(name)
		if err != nil {
			return nil, false
		}
		return s.Spec.ClusterIPs, true
	})
	udp, err := net.ListenPacket("udp", listen)
	if err != nil {
		return err
	}
	tcp, err := net.Listen("tcp", listen)
	if err != nil {
		_ = udp.Close()
		return err
	}
	go func() {
		<-ctx.Done()
		_ = udp.Close()
		_ = tcp.Close()
	}()
	fmt.Fprintf(os.Stderr, "cluster-dns: serving *%s on %s\n", z.Suffix(), listen)
	go serveTCP(tcp, z)
	serveUDP(udp, z)
	return nil
}

func serveUDP(conn net.PacketConn, z *zone.Zone) {
	buf := make([]byte, 65535)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if msg := z.Answer(buf[:n]); msg != nil {
			_, _ = conn.WriteTo(msg, from)
		}
	}
}

func serveTCP(ln net.Listener, z *zone.Zone) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go func() {
			defer func() { _ = c.Close() }()
			for {
				// Messages are prefixed by their length; an idle client is dropped.
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				var size [2]byte
				if _, err := io.ReadFull(c, size[:]); err != nil {
					return
				}
				query := make([]byte, binary.BigEndian.Uint16(size[:]))
				if _, err := io.ReadFull(c, query); err != nil {
					return
				}
				msg := z.Answer(query)
				if msg == nil {
					return
				}
				out := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
				if _, err := c.Write(append(out, msg...)); err != nil {
					return
				}
			}
		}()
	}
}
