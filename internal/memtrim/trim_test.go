package memtrim

import (
	"strings"
	"testing"
)

const smapsSample = `00400000-0112d000 r-xp 00000000 fd:00 1234                               /bin/session
Size:              13492 kB
Rss:               10420 kB
Anonymous:             0 kB
0112d000-0202f000 r--p 00d2d000 fd:00 1234                               /bin/session
Size:              15368 kB
Rss:               12680 kB
Anonymous:             0 kB
0202f000-020f8000 rw-p 01c2f000 fd:00 1234                               /bin/session
Rss:                 728 kB
Anonymous:           700 kB
02100000-02200000 r--p 01d00000 fd:00 1234                               /bin/session
Rss:                 100 kB
Anonymous:             8 kB
7f4e2844e000-7f4e28800000 rw-p 00000000 00:00 0 
Rss:                2064 kB
Anonymous:          2064 kB
7f4e28446000-7f4e2844e000 r--p 00000000 fd:00 99                         /data/my store/device.db-shm
Rss:                  32 kB
Anonymous:             0 kB
7f4e28500000-7f4e28600000 r-xp 00000000 fd:00 98                         /bin/session (deleted)
Anonymous:             0 kB
`

// Only the executable's read-only regions that were never written are unmapped: a region with a
// private copy (a PIE binary's relocated read-only data) would read back the file's bytes.
func TestDroppableIsTheExecutablesCleanReadOnlyRegions(t *testing.T) {
	got, err := droppable(strings.NewReader(smapsSample), "/bin/session")
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{
		{lo: 0x400000, hi: 0x112d000, perms: "r-xp", path: "/bin/session", rss: 10420},
		{lo: 0x112d000, hi: 0x202f000, perms: "r--p", path: "/bin/session", rss: 12680},
	}
	if len(got) != len(want) {
		t.Fatalf("droppable = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("region %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestResidentReadsStatus(t *testing.T) {
	r := resident([]byte("Name:\tsession\nVmRSS:\t   33520 kB\nRssAnon:\t    9912 kB\nRssFile:\t   23608 kB\nRssShmem:\t 0 kB"))
	if r != (Resident{RSS: 33520, Anon: 9912, File: 23608}) {
		t.Errorf("resident = %+v", r)
	}
}
