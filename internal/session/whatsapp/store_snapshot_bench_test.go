package whatsapp

import (
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// BenchmarkNewSQLiteStore measures what opening a NEW SQLite store costs a session before its QR
// code: Opener.Open (the device store, its owner record, inbox, sink cursors, outbox, and the
// whatsmeow client over it) on a path where no database exists, by the migrations and from the
// schema snapshot, alternately in one loop so that both see the same machine. It reports each
// one's process CPU (user + system, every thread) and wall time per open, and the snapshot's
// share of the migrations' CPU. Close is not measured: a session keeps its store open.
//
//	go test ./internal/session/whatsapp -run XXX -bench NewSQLiteStore -cpu 1 -count 3
func BenchmarkNewSQLiteStore(b *testing.B) {
	g := NewWithT(b)
	dir := b.TempDir()
	var cpu, wall [2]time.Duration // [migrations, snapshot]
	n := 0
	for b.Loop() {
		for i, snapshot := range []bool{false, true} {
			path := filepath.Join(dir, strconv.Itoa(n)+"-"+strconv.FormatBool(snapshot)+".db")
			c0, w0 := processCPU(), time.Now()
			c := openNewStore(g, path, snapshot)
			cpu[i] += processCPU() - c0
			wall[i] += time.Since(w0)
			b.StopTimer()
			_ = c.Close()
			b.StartTimer()
		}
		n++
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(n) / 1e6 }
	b.ReportMetric(ms(cpu[0]), "migrations-cpu-ms/op")
	b.ReportMetric(ms(cpu[1]), "snapshot-cpu-ms/op")
	b.ReportMetric(ms(wall[0]), "migrations-wall-ms/op")
	b.ReportMetric(ms(wall[1]), "snapshot-wall-ms/op")
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "cpu-ratio")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
