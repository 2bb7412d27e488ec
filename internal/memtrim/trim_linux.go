package memtrim

import (
	"bytes"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
)

// Trim returns the Go heap's free pages to the OS (a GC first) and unmaps the process's
// read-only, never-written mappings of its own executable. Safe at any time: a page of code or
// read-only data that is used again is mapped again by the next page fault, from the page cache.
func Trim() (Result, error) {
	return trim(true)
}

// TrimBinary unmaps the executable's read-only mappings only, without a GC: cheap enough to
// repeat while a session idles, so that its resident code is what it ran lately rather than all
// it ever ran. After the first trim it does not read /proc/self/smaps again (the regions are
// those the first found; see binaryRegions): a read and parse of smaps allocated ~300 KiB of
// heap and ran code that an idle session runs for nothing else, which made each trim map back
// part of what it had just unmapped (docs/benchmarks.md, "Where the MiB go").
func TrimBinary() (Result, error) {
	return trim(false)
}

func trim(heap bool) (Result, error) {
	var res Result
	res.Before = readResident()
	if heap {
		debug.FreeOSMemory()
	}
	regions, measured, err := binaryRegions(heap)
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
	if !measured {
		res.Unmapped = max(res.Before.File-res.After.File, 0)
	}
	return res, nil
}

// binary holds the executable's droppable regions once found. They do not change while the
// process runs: the executable is mapped once, before main, and Go never remaps or writes its
// read-only segments, so a region that had no private page then never gets one.
var binary struct {
	sync.Mutex
	found   bool
	regions []mapping
}

// binaryRegions returns the executable's droppable regions: read from /proc/self/smaps (with
// what each has resident: measured) on the first call or when fresh, else those found before.
func binaryRegions(fresh bool) (regions []mapping, measured bool, err error) {
	binary.Lock()
	defer binary.Unlock()
	if binary.found && !fresh {
		return binary.regions, false, nil
	}
	if regions, err = ownRegions(); err != nil {
		return nil, false, err
	}
	binary.regions, binary.found = regions, true
	return regions, true, nil
}

// readResident reads /proc/self/status into a buffer on the stack (the file is ~1.5 KiB; what
// does not fit is after the fields read here), without the allocations of os.ReadFile.
func readResident() Resident {
	fd, err := syscall.Open("/proc/self/status", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return Resident{}
	}
	defer func() { _ = syscall.Close(fd) }()
	var buf [4096]byte
	n := 0
	for n < len(buf) {
		m, err := syscall.Read(fd, buf[n:])
		if err != nil || m <= 0 {
			break
		}
		n += m
	}
	return resident(buf[:n])
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
