package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir keeps a second `make run` from wiping the pod folders of one that is running. The
// kernel drops the lock with the process, however it ends.
func lockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "localdev.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s is in use by another local make run (stop it, or use -dir): %w", dir, err)
	}
	return func() { _ = f.Close() }, nil
}
