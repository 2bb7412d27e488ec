package memtrim

import (
	"context"
	"runtime"
)

// gcCycles returns a channel that receives after each garbage collection, until ctx ends: a
// cleanup attached to an object nothing references runs once a collection has found it
// unreachable, and attaches the next one.
//
// Why the trim wants it: a collection scans every goroutine's stack, which reads the stack maps
// of every function on them in the binary's pclntab, and the type data of the objects it marks;
// Go forces one every 2 minutes. Those pages stayed mapped until the next periodic trim, up to
// its whole period, on top of what the idle session runs anyway: each session's highest RSS was
// taken in the period after a collection (docs/benchmarks.md, "Where the MiB go").
func gcCycles(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	var arm func()
	arm = func() {
		runtime.AddCleanup(new(gcSentinel), func(struct{}) {
			if ctx.Err() != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
			arm()
		}, struct{}{})
	}
	arm()
	return ch
}

// gcSentinel holds a pointer so that it is not a tiny allocation, which shares its memory
// block with other objects and may stay reachable through them.
type gcSentinel struct{ _ *byte }
