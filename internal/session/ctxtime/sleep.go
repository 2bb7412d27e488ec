// Package ctxtime holds the session's waits that end early when their context does.
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx is done if that comes first; the caller tells which by ctx.Err().
// Unlike time.Sleep it never outlives a cancelled session, and unlike time.After it leaves no
// timer running when it returns.
func Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
