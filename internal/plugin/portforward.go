package plugin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	streamhttp "k8s.io/streaming/pkg/httpstream"
)

// portForwardDialer reaches a port of a pod the way kubectl port-forward does: a stream
// through the API server to the kubelet (pods/portforward, create, in the namespace), opened on
// a free loopback port of this machine for the duration of one command. The connection
// originates inside the pod's network namespace, so the session's NetworkPolicy is no
// obstacle, and the HTTP request inside it, Authorization header included, reaches the session
// as sent (the API server's pod and service proxies drop that header).
func portForwardDialer(cfg *rest.Config) SessionDialer {
	return func(ctx context.Context, namespace, pod string, port int) (string, func(), error) {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return "", nil, err
		}
		url := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
		transport, upgrader, err := spdy.RoundTripperFor(cfg)
		if err != nil {
			return "", nil, err
		}
		dialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
		if ws, err := portforward.NewSPDYOverWebsocketDialerForStreaming(url, cfg); err == nil {
			// As kubectl: WebSockets first, SPDY where the API server does not upgrade to them.
			dialer = portforward.NewFallbackDialerForStreaming(ws, dialer, func(err error) bool {
				return streamhttp.IsUpgradeFailure(err) || streamhttp.IsHTTPSProxyError(err)
			})
		}
		stop, ready := make(chan struct{}), make(chan struct{})
		fw, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stop, ready, io.Discard, io.Discard)
		if err != nil {
			return "", nil, err
		}
		failed := make(chan error, 1)
		go func() { failed <- fw.ForwardPorts() }()
		select {
		case <-ready:
		case err := <-failed:
			return "", nil, fmt.Errorf("port-forward to pod %s (needs create on pods/portforward): %w", pod, err)
		case <-ctx.Done():
			close(stop)
			return "", nil, ctx.Err()
		}
		ports, err := fw.GetPorts()
		if err != nil || len(ports) != 1 {
			close(stop)
			return "", nil, fmt.Errorf("port-forward to pod %s opened no local port: %v", pod, err)
		}
		return "http://127.0.0.1:" + strconv.Itoa(int(ports[0].Local)), func() { close(stop) }, nil
	}
}
