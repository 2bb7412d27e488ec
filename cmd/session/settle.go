package main

import (
	"context"
	"os"
	"runtime/debug"
	"time"

	"github.com/go-logr/logr"

	"github.com/waoperator/whatsapp-operator/internal/memtrim"
)

// defaultIdleGOGC: an idle session allocates little (a Lease renewal every 10 s, WhatsApp's
// keepalives) and its live heap is ~3 MiB, so collecting when it has grown by half, instead of
// Go's 100 %, costs next to no CPU and keeps less heap resident (docs/benchmarks.md, "Where the
// time and memory of a session go"). Start-up and the first login, which allocate in bursts,
// run at Go's default.
const defaultIdleGOGC = 50

// settle waits until the session has been connected for after, then lowers GOGC to idleGOGC
// (unless $GOGC is set) and gives back the memory start-up used; after 0 does neither.
func settle(ctx context.Context, ready func() bool, after time.Duration, idleGOGC int, log logr.Logger) {
	if after <= 0 {
		return
	}
	trim := func() (memtrim.Result, error) {
		if _, set := os.LookupEnv("GOGC"); !set && idleGOGC > 0 {
			debug.SetGCPercent(idleGOGC)
		}
		return memtrim.Trim()
	}
	memtrim.AfterSettled(ctx, ready, after, time.Second, trim, func(res memtrim.Result, err error) {
		if err != nil {
			log.Info("cannot release the start-up memory", "error", err.Error())
			return
		}
		log.Info("released the start-up memory", "rssKiB", res.Before.RSS, "nowKiB", res.After.RSS,
			"binaryUnmappedKiB", res.Unmapped)
	})
}
