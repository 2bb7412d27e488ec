package main

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// gcSettings reads GOGC and the memory limit without changing them.
func gcSettings() (percent int, limit int64) {
	percent = debug.SetGCPercent(-1)
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1)
}

// The collector is off only until the session's first QR code (or connection) is published:
// after that the process runs with its own GOGC and GOMEMLIMIT again, so an idle session's
// heap is collected as configured.
func TestStartGCIsHeldUntilTheQRCodeThenRestored(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(70))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(1 << 40))

	restore := holdGC()
	if p, l := gcSettings(); p != -1 || l != startGCLimit {
		t.Fatalf("during start-up: GOGC %d, limit %d; want off and %d", p, l, startGCLimit)
	}
	var state atomic.Value
	state.Store(whatsappv1alpha1.SessionConnecting)
	done := make(chan struct{})
	go func() {
		releaseGCAfterStart(context.Background(), func() whatsappv1alpha1.SessionState {
			return state.Load().(whatsappv1alpha1.SessionState)
		}, restore, time.Millisecond, time.Hour)
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("restored while the session was still connecting")
	case <-time.After(50 * time.Millisecond):
	}
	state.Store(whatsappv1alpha1.SessionPairing)
	<-done
	if p, l := gcSettings(); p != 70 || l != 1<<40 {
		t.Fatalf("after the QR code: GOGC %d, limit %d; want 70 and %d", p, l, int64(1<<40))
	}
}

// A GOMEMLIMIT below the start-up limit is kept during start-up: the operator's limit wins.
func TestStartGCKeepsALowerMemoryLimit(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(16 << 20))
	restore := holdGC()
	defer restore()
	if _, l := gcSettings(); l != 16<<20 {
		t.Fatalf("limit during start-up %d; want the operator's %d", l, 16<<20)
	}
}
