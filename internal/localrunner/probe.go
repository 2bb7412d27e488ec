package localrunner

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// probe runs the container's readiness probe, against the mapped port, until ctx ends; a
// container without one is ready as soon as it runs, as in a cluster.
func (run *podRun) probe(ctx context.Context, c *containerRun) {
	p := c.spec.ReadinessProbe
	if p == nil || (p.HTTPGet == nil && p.TCPSocket == nil) {
		if p != nil {
			run.log.Info("only HTTP and TCP readiness probes are run; taking the container as ready", "container", c.spec.Name)
		}
		run.setReady(ctx, c, true)
		return
	}
	period := seconds(p.PeriodSeconds, 10)
	timeout := seconds(p.TimeoutSeconds, 1)
	success, failure := max(p.SuccessThreshold, 1), max(p.FailureThreshold, 3)
	check, err := run.prober(p, timeout)
	if err != nil {
		run.log.Info("readiness probe cannot run", "container", c.spec.Name, "reason", err.Error())
		return
	}

	delay := time.NewTimer(seconds(p.InitialDelaySeconds, 0))
	defer delay.Stop()
	select {
	case <-ctx.Done():
		return
	case <-delay.C:
	}
	t := time.NewTicker(period)
	defer t.Stop()
	var ok, bad int32
	for {
		if err := check(ctx); err != nil {
			ok, bad = 0, bad+1
			if bad >= failure {
				run.setReady(ctx, c, false)
			}
		} else {
			ok, bad = ok+1, 0
			if ok >= success {
				run.setReady(ctx, c, true)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (run *podRun) setReady(ctx context.Context, c *containerRun, ready bool) {
	run.mu.Lock()
	changed := c.ready != ready && !c.proc.exited()
	if changed {
		c.ready = ready
	}
	run.mu.Unlock()
	if changed {
		run.log.V(1).Info("readiness changed", "container", c.spec.Name, "ready", ready)
		run.writeStatusLogged(ctx)
	}
}

func (run *podRun) prober(p *corev1.Probe, timeout time.Duration) (func(context.Context) error, error) {
	if h := p.HTTPGet; h != nil {
		port, err := run.ports.resolve(h.Port)
		if err != nil {
			return nil, err
		}
		host := h.Host
		if host == "" {
			host = loopback
		}
		scheme := strings.ToLower(string(h.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(int(port))), Path: h.Path}
		if !strings.HasPrefix(u.Path, "/") {
			u.Path = "/" + u.Path
		}
		// As a kubelet's prober: no proxy, no pooled connections, no certificate check.
		client := &http.Client{Timeout: timeout, Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		}}
		return func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
			if err != nil {
				return err
			}
			for _, hd := range h.HTTPHeaders {
				req.Header.Add(hd.Name, hd.Value)
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode < 200 || resp.StatusCode >= 400 {
				return fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			return nil
		}, nil
	}
	port, err := run.ports.resolve(p.TCPSocket.Port)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(loopback, strconv.Itoa(int(port)))
	return func(ctx context.Context) error {
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}, nil
}

func seconds(n, def int32) time.Duration {
	if n <= 0 {
		n = def
	}
	return time.Duration(n) * time.Second
}
