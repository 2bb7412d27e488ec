package memtrim

import (
	"context"
	"time"
)

// AfterSettled calls trim once ready() has been true for settle without interruption (checked
// every poll), and reports its result to done. It returns after that, or when ctx ends.
//
// A session's start-up burst is over once it has been connected a moment: package init, the
// store's migration, pairing, the first login's pre-keys and the first sync are behind it.
func AfterSettled(ctx context.Context, ready func() bool, settle, poll time.Duration,
	trim func() (Result, error), done func(Result, error)) {
	t := time.NewTicker(poll)
	defer t.Stop()
	afterSettled(ctx, ready, settle, t.C, trim, done)
}

// afterSettled is AfterSettled on the times of ticks.
func afterSettled(ctx context.Context, ready func() bool, settle time.Duration, ticks <-chan time.Time,
	trim func() (Result, error), done func(Result, error)) {
	var since time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticks:
			switch {
			case !ready():
				since = time.Time{}
			case since.IsZero():
				since = now
			case now.Sub(since) >= settle:
				done(trim())
				return
			}
		}
	}
}

// Every calls trim every period, and after each garbage collection, while ready() holds, and
// reports each result to done, until ctx ends. An idle session maps back the pages of what it
// runs (Lease renewals, keepalives, the send API's and events' timers); unmapped again each
// period, they stay what the last period ran instead of adding up over the hours. What a
// collection maps (see gcCycles) is unmapped right after it instead of staying for the rest
// of the period, and again afterGC later: the collection shrank goroutine stacks, and their
// growing back on the next Lease renewal or keepalive reads pclntab like the collection did.
func Every(ctx context.Context, ready func() bool, period time.Duration, trim func() (Result, error), done func(Result, error)) {
	t := time.NewTicker(period)
	defer t.Stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	every(ctx, ready, t.C, gcCycles(ctx), afterGC, trim, done)
}

// afterGC is when the second trim after a collection runs: after the session's 5 s and 10 s
// timers (outbox, Lease) have run once.
const afterGC = 12 * time.Second

func every(ctx context.Context, ready func() bool, ticks <-chan time.Time, gcs <-chan struct{}, again time.Duration,
	trim func() (Result, error), done func(Result, error)) {
	var second <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		case <-gcs:
			second = time.After(again)
		case <-second:
			second = nil
		}
		if ready() {
			done(trim())
		}
	}
}
