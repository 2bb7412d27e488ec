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
	err := Sleep(ctx, time.Hour)
	if err != context.Canceled {
		t.Errorf("Sleep on a cancelled context returned %v, want context.Canceled", err)
	}
	if waited := time.Since(start); waited > time.Minute {
		t.Errorf("slept %v on a cancelled context", waited)
	}
}

func TestSleepWaitsItsDuration(t *testing.T) {
	const d = 20 * time.Millisecond
	start := time.Now()
	if err := Sleep(context.Background(), d); err != nil {
		t.Errorf("Sleep returned %v after its whole duration", err)
	}
	if waited := time.Since(start); waited < d {
		t.Errorf("slept %v, want at least %v", waited, d)
	}
}
