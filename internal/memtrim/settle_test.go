package memtrim

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onsi/gomega"
)

func TestAfterSettledTrimsOnceReadyHeld(t *testing.T) {
	g := gomega.NewWithT(t)
	var ready atomic.Bool
	var polls, trims atomic.Int32
	finished := make(chan struct{})
	go func() {
		AfterSettled(context.Background(), func() bool { polls.Add(1); return ready.Load() }, 20*time.Millisecond,
			time.Millisecond, func() (Result, error) { trims.Add(1); return Result{}, nil }, func(Result, error) {})
		close(finished)
	}()
	// Not ready: nothing, however many polls (50 ms of them at least).
	g.Eventually(polls.Load).Should(gomega.BeNumerically(">=", 50))
	g.Expect(trims.Load()).To(gomega.BeZero(), "trimmed before the session was ready")
	ready.Store(true)
	g.Eventually(finished).Should(gomega.BeClosed())
	g.Expect(trims.Load()).To(gomega.Equal(int32(1)))
}

// A readiness that flaps (connected, then reconnecting) starts the settling time over.
func TestAfterSettledWaitsForAnUninterruptedSettle(t *testing.T) {
	t0 := time.Now()
	ticks := make(chan time.Time, 40)
	for i := range 40 {
		ticks <- t0.Add(time.Duration(i) * time.Second) // one poll a second
	}
	var polls int
	ready := func() bool {
		polls++
		return polls%5 != 0 || polls > 20 // false every 5th poll until the 20th
	}
	trimmedAt := 0
	afterSettled(context.Background(), ready, 6*time.Second, ticks,
		func() (Result, error) { trimmedAt = polls; return Result{}, nil }, func(Result, error) {})
	// Ready from poll 21 on; 6 s later is poll 27.
	if trimmedAt != 27 {
		t.Errorf("trimmed at poll %d, want 27: six seconds after readiness stopped dropping", trimmedAt)
	}
}

func TestAfterSettledReturnsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() {
		AfterSettled(ctx, func() bool { return false }, time.Millisecond, time.Millisecond,
			func() (Result, error) { t.Error("trimmed"); return Result{}, nil }, func(Result, error) {})
		close(finished)
	}()
	cancel()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterSettled still running after its context ended")
	}
}

// Every trims on each tick while the session is ready, and skips the ticks when it is not
// (reconnecting, pairing: busy, not idle).
func TestEveryTrimsOnlyWhileReady(t *testing.T) {
	ticks := make(chan time.Time)
	readiness := []bool{false, false, true, true, false} // one per tick, in order
	var polls int
	var trims []int
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() {
		every(ctx, func() bool { polls++; return readiness[polls-1] }, ticks, nil, time.Hour,
			func() (Result, error) { trims = append(trims, polls); return Result{}, nil }, func(Result, error) {})
		close(finished)
	}()
	for range readiness {
		ticks <- time.Now()
	}
	cancel()
	<-finished
	if len(trims) != 2 || trims[0] != 3 || trims[1] != 4 {
		t.Errorf("trimmed at ticks %v, want [3 4]: the ticks at which the session was ready", trims)
	}
}

// A collection maps the stack maps and type data it reads; the trim that follows it unmaps
// them at once instead of at the end of the period.
func TestEveryTrimsAfterEachCollection(t *testing.T) {
	g := gomega.NewWithT(t)
	var trims atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() {
		Every(ctx, func() bool { return true }, time.Hour, func() (Result, error) { trims.Add(1); return Result{}, nil }, func(Result, error) {})
		close(finished)
	}()
	for round := int32(1); round <= 3; round++ {
		g.Eventually(func() int32 { runtime.GC(); return trims.Load() }).Should(gomega.BeNumerically(">=", round),
			"no trim after collection %d, with the period an hour away", round)
	}
	cancel()
	g.Eventually(finished).Should(gomega.BeClosed())
}

// After a collection: a trim at once, and one more a moment later, when the stacks the
// collection shrank have grown back; nothing more until the next collection or tick.
func TestEveryTrimsTwiceAfterACollection(t *testing.T) {
	g := gomega.NewWithT(t)
	var trims atomic.Int32
	gcs := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go every(ctx, func() bool { return true }, nil, gcs, 50*time.Millisecond,
		func() (Result, error) { trims.Add(1); return Result{}, nil }, func(Result, error) {})
	gcs <- struct{}{}
	g.Eventually(trims.Load).Should(gomega.Equal(int32(2)))
	g.Consistently(trims.Load, 200*time.Millisecond).Should(gomega.Equal(int32(2)))
}
