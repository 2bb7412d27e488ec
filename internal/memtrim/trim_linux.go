package memtrim

import (
	"bytes"
	"os"
	"runtime/debug"
	"syscall"
)

// Trim returns the Go heap's free pages to the OS (a GC first) and unmaps the process's
// read-only, never-written mappings of its own executable. Safe at any time: a page of code or
// read-only data that is used again is mapped again by the next page fault, from the page cache.
func Trim() (Result, error) {
	return trim(true)
}

// TrimBinary unmaps the executable's read-only mappings only, without a GC: cheap enough to
// repeat while a session idles (a read of /proc/self/smaps and a madvise per mapping), so that
// its resident code is what it ran lately rather than all it ever ran.
func TrimBinary() (Result, error) {
	return trim(false)
}

func trim(heap bool) (Result, error) {
	var res Result
	res.Before = readResident()
	if heap {
		debug.FreeOSMemory()
	}
	regions, err := ownRegions()
	if err != nil {
		return res, err
	}
	for _, m := range regions {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.lo, m.hi-m.lo, syscall.MADV_DONTNEED); errno != 0 {
			return res, errno
		}
		res.Mappings++
		res.Unmapped += m.rss
	}
	res.After = readResident()
	return res, nil
}

func readResident() Resident {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return Resident{}
	}
	return resident(bytes.NewReader(b))
}

// ownRegions is droppable for this process's executable.
func ownRegions() ([]mapping, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	return droppable(bytes.NewReader(smaps), exe)
}
