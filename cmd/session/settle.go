package main

import (
	"context"
	"time"

	"github.com/go-logr/logr"

	"github.com/waoperator/whatsapp-operator/internal/memtrim"
)

// settle waits until the session has been connected for after, then gives back the memory
// start-up used; after 0 never does. (A lower GOGC from then on was measured too, and did not
// lower the idle session's anonymous memory beyond the runs' noise: docs/benchmarks.md.)
func settle(ctx context.Context, ready func() bool, after time.Duration, log logr.Logger) {
	if after <= 0 {
		return
	}
	memtrim.AfterSettled(ctx, ready, after, time.Second, memtrim.Trim, func(res memtrim.Result, err error) {
		if err != nil {
			log.Info("cannot release the start-up memory", "error", err.Error())
			return
		}
		log.Info("released the start-up memory", "rssKiB", res.Before.RSS, "nowKiB", res.After.RSS,
			"binaryUnmappedKiB", res.Unmapped)
	})
}
