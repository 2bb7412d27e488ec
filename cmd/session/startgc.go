package main

import (
	"context"
	"math"
	"runtime/debug"
	"time"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// Start-up runs no garbage collection until the session has shown its first QR code for
// startGCAfterQR (or is connected, or startGCHoldMax has passed): a fresh session allocates
// ~4 MiB before its code is in status, which took two collections (Go's first goal is 4 MiB),
// each with a stop-the-world of 4–10 ms on a loaded node, on the path to the QR code
// (docs/benchmarks.md, "start → QR in status"). Restored the moment the code showed, the first
// collection ran while the code's status write was still in flight and, 20 sessions starting
// at once, while the others were still on their way to their codes (2–3 ms of CPU each,
// docs/benchmarks.md, "Fifth round: the session's start CPU"); nothing that is waited for
// happens in the seconds a person takes to scan. startGCLimit bounds the heap meanwhile: past
// it the runtime collects as usual.
const (
	startGCHoldMax = 10 * time.Second
	startGCAfterQR = 2 * time.Second
	startGCLimit   = 48 << 20
)

// holdGC turns the collector off and returns what restores the process's settings (GOGC,
// GOMEMLIMIT, or Go's defaults). A limit set lower than startGCLimit is kept.
func holdGC() (restore func()) {
	percent := debug.SetGCPercent(-1)
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 || limit > startGCLimit {
		debug.SetMemoryLimit(startGCLimit)
	}
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}

// releaseGCAfterStart restores the collector afterQR after state first says a QR code is
// published, as soon as it says connected, after limit at the latest, or when ctx ends; it
// polls every poll.
func releaseGCAfterStart(ctx context.Context, state func() whatsappv1alpha1.SessionState, restore func(), poll, afterQR, limit time.Duration) {
	defer restore()
	t := time.NewTicker(poll)
	defer t.Stop()
	deadline := time.After(limit)
	var qrShown <-chan time.Time // nil until the first QR code
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-qrShown:
			return
		case <-t.C:
			switch state() {
			case whatsappv1alpha1.SessionConnected:
				return
			case whatsappv1alpha1.SessionPairing:
				if qrShown == nil {
					qrShown = time.After(afterQR)
				}
			}
		}
	}
}
