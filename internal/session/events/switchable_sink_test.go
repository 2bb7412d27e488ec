package events_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// switchableSink is a webhook receiver that a test takes down and brings back: while down (as
// it starts) it answers downStatus, once up it takes every event (204) and counts it. A
// firstStatus other than 0 answers the very first request, before the outage.
type switchableSink struct {
	*httptest.Server
	down      atomic.Bool
	delivered atomic.Int32
}

func newSwitchableSink(t testing.TB, firstStatus, downStatus int) *switchableSink {
	t.Helper()
	s := &switchableSink{}
	s.down.Store(true)
	var calls atomic.Int32
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case calls.Add(1) == 1 && firstStatus != 0:
			w.WriteHeader(firstStatus)
		case s.down.Load():
			w.WriteHeader(downStatus)
		default:
			s.delivered.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(s.Close)
	return s
}
