package memtrim

import (
	"encoding/json"
	"os"
	"testing"
)

// In this very process: the executable's read-only mappings are made fully resident (read
// through /proc/self/mem, which faults every page in), Trim unmaps them, and the process goes on
// running code from those pages (they fault back in from the page cache).
func TestTrimUnmapsTheBinaryAndTheProcessRunsOn(t *testing.T) {
	_, size := faultInBinary(t)
	res, err := Trim()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before %+v, after %+v, %d regions, %d KiB unmapped of %d KiB", res.Before, res.After, res.Mappings, res.Unmapped, size)
	if res.Mappings < 2 {
		t.Errorf("unmapped %d regions of the executable, want its code and its read-only data", res.Mappings)
	}
	if res.Unmapped < size*9/10 {
		t.Errorf("Trim found %d KiB of %d KiB resident, after they were all read", res.Unmapped, size)
	}
	regions, err := ownRegions()
	if err != nil {
		t.Fatal(err)
	}
	var now int64
	for _, m := range regions {
		now += m.rss
	}
	// What runs meanwhile (this test, the reading of smaps) maps some of it back.
	if now > size*3/4 {
		t.Errorf("the executable's read-only mappings: %d KiB resident after Trim, of %d KiB", now, size)
	}
	b, err := json.Marshal(map[string]any{"still": []int{1, 2, 3}})
	if err != nil || string(b) != `{"still":[1,2,3]}` {
		t.Errorf("after Trim: %s, %v", b, err)
	}
}

// The periodic trim of an idle session: after the first, it unmaps the same regions without
// reading /proc/self/smaps again, whose read and parse allocated ~300 KiB and ran code an idle
// session runs for nothing else (each trim mapped part of what it had just unmapped back).
func TestTrimBinaryRepeatsWithoutReadingSmaps(t *testing.T) {
	if _, err := Trim(); err != nil {
		t.Fatal(err)
	}
	regions, size := faultInBinary(t)
	res, err := TrimBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before %+v, after %+v, %d regions, %d KiB unmapped of %d KiB", res.Before, res.After, res.Mappings, res.Unmapped, size)
	if res.Mappings != len(regions) || res.Unmapped < size/2 {
		t.Errorf("TrimBinary unmapped %d regions, %d KiB; want the %d regions, most of their %d KiB", res.Mappings, res.Unmapped, len(regions), size)
	}
	// Two small reads of /proc/self/status and the madvise calls; a read of smaps is
	// thousands of allocations (a string per field of each of its lines).
	if allocs := testing.AllocsPerRun(5, func() { _, _ = TrimBinary() }); allocs > 40 {
		t.Errorf("TrimBinary made %.0f allocations, want a few: it reads /proc/self/smaps again", allocs)
	}
}

// faultInBinary makes the executable's read-only mappings fully resident (a read through
// /proc/self/mem faults every page in) and returns them with their size in KiB.
func faultInBinary(t *testing.T) ([]mapping, int64) {
	t.Helper()
	regions, err := ownRegions()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mem.Close() }()
	var size int64
	for _, m := range regions {
		if _, err := mem.ReadAt(make([]byte, m.hi-m.lo), int64(m.lo)); err != nil {
			t.Fatal(err)
		}
		size += int64(m.hi-m.lo) / 1024
	}
	return regions, size
}
