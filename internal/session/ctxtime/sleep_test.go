package ctxtime

import (
	"context"
	"testing"
	"time"
)

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	Sleep(ctx, time.Hour)
	if waited := time.Since(start); waited > time.Minute {
		t.Errorf("slept %v on a cancelled context", waited)
	}
}

func TestSleepWaitsItsDuration(t *testing.T) {
	const d = 20 * time.Millisecond
	start := time.Now()
	Sleep(context.Background(), d)
	if waited := time.Since(start); waited < d {
		t.Errorf("slept %v, want at least %v", waited, d)
	}
}
