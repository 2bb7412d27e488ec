package session

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
)

// serve runs the health and metrics endpoints until ctx ends. Liveness is the process
// answering: a halted session (Replaced, LoggedOut) is alive on purpose, so that it keeps its
// Lease and nothing restarts it into a loop. Readiness is leading and logged in.
func (r *Runtime) serve(ctx context.Context, log logr.Logger) error {
	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	health.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !r.Ready() {
			http.Error(w, "not leading and connected", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	metricsMux := http.NewServeMux()
	var metricsHandler http.Handler = r.metrics
	if more := r.cfg.MoreMetrics; more != nil {
		metricsHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.metrics.ServeHTTP(w, req)
			more(w)
		})
	}
	metricsMux.Handle("/metrics", metricsHandler)
	for path, h := range r.cfg.MetricsHandlers {
		metricsMux.Handle(path, h)
	}

	for _, s := range []struct {
		addr    string
		handler http.Handler
	}{{r.cfg.HealthAddr, health}, {r.cfg.MetricsAddr, metricsMux}} {
		if s.addr == "" || s.addr == "0" {
			continue
		}
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(err, "endpoint stopped", "address", s.addr)
			}
		}()
		go func() {
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
		}()
	}
	return nil
}
