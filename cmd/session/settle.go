package main

import (
	"context"
	"flag"
	"time"

	"github.com/go-logr/logr"

	"github.com/waoperator/whatsapp-operator/internal/memtrim"
)

// trimFlags say when the session gives memory back.
type trimFlags struct{ after, every time.Duration }

func (f *trimFlags) bind(fs *flag.FlagSet) {
	fs.DurationVar(&f.after, "release-startup-memory-after", 10*time.Second,
		"Once connected this long, give back the memory start-up used (free heap pages, the binary's mapped pages); 0 never does.")
	fs.DurationVar(&f.every, "release-binary-pages-every", 30*time.Second,
		"After that, while connected, unmap the binary's pages this often, so that only what idle code ran lately stays mapped; 0 never does.")
}

// settle waits until the session has been connected for f.after, then gives back the memory
// start-up used, and from then on unmaps the binary's pages every f.every while connected;
// after 0 does neither. (A lower GOGC from then on was measured too, and did not lower the
// idle session's anonymous memory beyond the runs' noise: docs/benchmarks.md.)
func settle(ctx context.Context, ready func() bool, f trimFlags, log logr.Logger) {
	if f.after <= 0 {
		return
	}
	memtrim.AfterSettled(ctx, ready, f.after, time.Second, memtrim.Trim, func(res memtrim.Result, err error) {
		if err != nil {
			log.Info("cannot release the start-up memory", "error", err.Error())
			return
		}
		log.Info("released the start-up memory", "rssKiB", res.Before.RSS, "nowKiB", res.After.RSS,
			"binaryUnmappedKiB", res.Unmapped)
	})
	if f.every <= 0 || ctx.Err() != nil {
		return
	}
	memtrim.Every(ctx, ready, f.every, memtrim.TrimBinary, func(res memtrim.Result, err error) {
		if err != nil {
			log.V(1).Info("cannot unmap the binary's pages", "error", err.Error())
			return
		}
		log.V(1).Info("unmapped the binary's pages", "rssKiB", res.Before.RSS, "nowKiB", res.After.RSS, "binaryUnmappedKiB", res.Unmapped)
	})
}
