package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/waoperator/whatsapp-operator/internal/session/ctxtime"
)

// cpuTimes is the CPU time used so far by the embedded control plane's processes (children of
// this process named kube-apiserver and etcd) and by this process, which holds the floor's
// client, the in-process controller and the counting proxy. Two readings around a phase say
// where its time went on machines where everything shares two cores.
type cpuTimes struct{ apiServer, etcd, bench time.Duration }

func (a cpuTimes) sub(b cpuTimes) cpuTimes {
	return cpuTimes{a.apiServer - b.apiServer, a.etcd - b.etcd, a.bench - b.bench}
}

func (a cpuTimes) perResource(n int) string {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	return fmt.Sprintf("CPU per resource: kube-apiserver %.1f ms, etcd %.1f ms, bench process %.1f ms", ms(a.apiServer), ms(a.etcd), ms(a.bench))
}

func readCPU() cpuTimes {
	var t cpuTimes
	self := os.Getpid()
	t.bench, _, _ = procCPU("/proc/self/stat")
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		cpu, comm, ppid := procCPU(path)
		if ppid != self {
			continue
		}
		switch comm {
		case "kube-apiserver":
			t.apiServer += cpu
		case "etcd":
			t.etcd += cpu
		}
	}
	return t
}

// procCPU reads utime + stime, the command name and the parent of a /proc/<pid>/stat file.
func procCPU(path string) (cpu time.Duration, comm string, ppid int) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, "", 0
	}
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return 0, "", 0
	}
	comm = s[open+1 : end]
	// After the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
	f := strings.Fields(s[end+1:])
	if len(f) < 13 {
		return 0, comm, 0
	}
	ppid, _ = strconv.Atoi(f[1])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks, comm, ppid
}

// waitQuiet waits, up to limit, until the whole machine used under quietCores of CPU over a
// second, and says how long that took and how busy the last second was. A figure of one
// session's latency, or of 20 sessions on two cores, measures the machine as much as the code
// when it starts while the phase before it is still winding down (a control plane with 500
// resources being stopped, the bench's own collector freeing its caches, writeback): the
// full run of 2026-11-30 had the sessions' threads wait 65 ms for a CPU before their QR, where
// the same code alone waited 50–57 ms.
func waitQuiet(ctx context.Context, limit time.Duration) (waited time.Duration, cores float64) {
	const quietCores = 0.3
	start := time.Now()
	for {
		b0, t0 := machineBusy(), time.Now()
		if ctxtime.Sleep(ctx, time.Second) != nil {
			return time.Since(start), cores
		}
		cores = (machineBusy() - b0).Seconds() / time.Since(t0).Seconds()
		if cores < quietCores || time.Since(start) >= limit {
			return time.Since(start), cores
		}
	}
}
