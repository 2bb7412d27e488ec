// Package testutil holds helpers that tests in several packages share. Nothing the operator or
// the session ships imports it.
package testutil

import (
	"bytes"
	"sync"
)

// SyncBuffer is an output (a log sink, a command's stdout) that goroutines write to while the
// test reads it. The zero value is ready to use.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
