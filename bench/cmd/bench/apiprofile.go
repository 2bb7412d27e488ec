package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// apiServerProfile, when $BENCH_APISERVER_PROFILE names a file prefix, takes a CPU profile of
// the embedded kube-apiserver (its /debug/pprof, on by default) for the first
// $BENCH_APISERVER_PROFILE_SECONDS (default 20) of a throughput side, and saves its /metrics
// before and after the side: what each side's API server CPU went to, for `go tool pprof` and
// a diff of apiserver_request_total / apiserver_watch_events_total. It returns a function that
// waits for the profile and writes the second /metrics.
func apiServerProfile(ctx context.Context, cfg *rest.Config, side string) func() {
	prefix := os.Getenv("BENCH_APISERVER_PROFILE")
	if prefix == "" {
		return func() {}
	}
	seconds := envSeconds("BENCH_APISERVER_PROFILE_SECONDS", 20*time.Second)
	save := func(path, file string) {
		if err := saveFromAPIServer(ctx, cfg, path, file, seconds+time.Minute); err != nil {
			fmt.Fprintln(os.Stderr, "apiserver profile:", err)
		}
	}
	save("/metrics", prefix+side+".metrics.before")
	done := make(chan struct{})
	go func() {
		defer close(done)
		save(pprofCPU(seconds), prefix+side+".pprof")
	}()
	return func() {
		save("/metrics", prefix+side+".metrics.after")
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
		}
	}
}

// envSeconds is $name as whole seconds, or def when it is unset or not a positive number.
func envSeconds(name string, def time.Duration) time.Duration {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return time.Duration(v) * time.Second
	}
	return def
}

// pprofCPU is the API server's CPU profile over d.
func pprofCPU(d time.Duration) string {
	return fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds()))
}

// getFromAPIServer GETs path from the API server with cfg's credentials, within timeout, and
// returns the body of a 200 answer for the caller to read and close.
func getFromAPIServer(ctx context.Context, cfg *rest.Config, path string, timeout time.Duration) (io.ReadCloser, error) {
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: rt, Timeout: timeout}).Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("API server %s: %s", path, resp.Status)
	}
	return resp.Body, nil
}

// saveFromAPIServer writes what getFromAPIServer answers for path to file.
func saveFromAPIServer(ctx context.Context, cfg *rest.Config, path, file string, timeout time.Duration) error {
	body, err := getFromAPIServer(ctx, cfg, path, timeout)
	if err != nil {
		return err
	}
	defer func() { _ = body.Close() }()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	_, err = io.Copy(f, body)
	return err
}
