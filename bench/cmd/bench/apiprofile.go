package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
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
	seconds := os.Getenv("BENCH_APISERVER_PROFILE_SECONDS")
	if seconds == "" {
		seconds = "20"
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiserver profile:", err)
		return func() {}
	}
	save := func(path, file string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cfg.Host, "/")+path, nil)
		if err != nil {
			return
		}
		resp, err := hc.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "apiserver profile:", err)
			return
		}
		defer func() { _ = resp.Body.Close() }()
		f, err := os.Create(file)
		if err != nil {
			return
		}
		defer func() { _ = f.Close() }()
		_, _ = io.Copy(f, resp.Body)
	}
	save("/metrics", prefix+side+".metrics.before")
	done := make(chan struct{})
	go func() {
		defer close(done)
		save("/debug/pprof/profile?seconds="+seconds, prefix+side+".pprof")
	}()
	return func() {
		save("/metrics", prefix+side+".metrics.after")
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
		}
	}
}
