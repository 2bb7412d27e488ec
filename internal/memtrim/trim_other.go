//go:build !linux

package memtrim

import "runtime/debug"

// Trim returns the Go heap's free pages to the OS; the executable's mappings are left alone
// outside Linux.
func Trim() (Result, error) {
	debug.FreeOSMemory()
	return Result{}, nil
}

// TrimBinary does nothing outside Linux.
func TrimBinary() (Result, error) {
	return Result{}, nil
}
