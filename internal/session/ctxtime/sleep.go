// Package ctxtime holds the waits that end early when their context does (the session's, and
// the bench's).
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx is done if that comes first, and then returns ctx.Err().
// Unlike time.Sleep it never outlives a cancelled session, and unlike time.After it leaves no
// timer running when it returns.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
