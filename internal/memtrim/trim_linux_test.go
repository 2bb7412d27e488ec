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
		buf := make([]byte, m.hi-m.lo)
		if _, err := mem.ReadAt(buf, int64(m.lo)); err != nil {
			t.Fatal(err)
		}
		size += int64(m.hi-m.lo) / 1024
	}

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
	if regions, err = ownRegions(); err != nil {
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
