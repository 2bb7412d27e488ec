package main

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// gcSettings reads GOGC and the memory limit without changing them.
func gcSettings() (percent int, limit int64) {
	percent = debug.SetGCPercent(-1)
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1)
}

// The collector is off only until the session's first QR code (or connection) is published,
// and for startGCAfterQR after the code: after that the process runs with its own GOGC and
// GOMEMLIMIT again, so an idle session's heap is collected as configured.
func TestStartGCIsHeldUntilTheQRCodeThenRestored(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(70))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(1 << 40))
	g := NewWithT(t)

	restore := holdGC()
	if p, l := gcSettings(); p != -1 || l != startGCLimit {
		t.Fatalf("during start-up: GOGC %d, limit %d; want off and %d", p, l, startGCLimit)
	}
	var state atomic.Value
	state.Store(whatsappv1alpha1.SessionConnecting)
	done := make(chan struct{})
	const afterQR = 300 * time.Millisecond
	go func() {
		releaseGCAfterStart(context.Background(), func() whatsappv1alpha1.SessionState {
			return state.Load().(whatsappv1alpha1.SessionState)
		}, restore, time.Millisecond, afterQR, time.Hour)
		close(done)
	}()
	restored := func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	g.Consistently(restored, 50*time.Millisecond, time.Millisecond).Should(BeFalse(), "restored while the session was still connecting")
	shown := time.Now()
	state.Store(whatsappv1alpha1.SessionPairing)
	g.Consistently(restored, afterQR/2, time.Millisecond).Should(BeFalse(), "restored as the QR code showed")
	g.Eventually(restored, 5*time.Second, time.Millisecond).Should(BeTrue())
	g.Expect(time.Since(shown)).To(BeNumerically(">=", afterQR))
	if p, l := gcSettings(); p != 70 || l != 1<<40 {
		t.Fatalf("after the QR code: GOGC %d, limit %d; want 70 and %d", p, l, int64(1<<40))
	}
}

// Connected ends the hold at once, whether or not a QR code showed (a paired device's restart).
func TestStartGCIsRestoredOnceConnected(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(70))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(1 << 40))
	g := NewWithT(t)
	restore := holdGC()
	done := make(chan struct{})
	go func() {
		releaseGCAfterStart(context.Background(), func() whatsappv1alpha1.SessionState {
			return whatsappv1alpha1.SessionConnected
		}, restore, time.Millisecond, time.Hour, time.Hour)
		close(done)
	}()
	g.Eventually(done, 5*time.Second).Should(BeClosed())
	g.Expect(debug.SetGCPercent(70)).To(Equal(70))
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
