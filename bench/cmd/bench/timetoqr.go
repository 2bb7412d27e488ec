package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"

	"github.com/waoperator/whatsapp-operator/internal/session/ctxtime"
)

// qrRound is one application of n resources at once, per resource: from just before its create
// call until the controller's Pod is seen, until its session process started (the process's
// start time from /proc), and until its QR code is seen in status.
type qrRound struct {
	qr, pod, process []time.Duration
	load             string
	// machine is the CPU the whole machine used during the round, stack what of it was the
	// stack's own (API server, etcd, this process with the controller and runner, the session
	// processes), both in cores (CPU seconds per second of the round).
	machine, stack float64
	wall           time.Duration
	// cpu is the round's CPU by part: API server, etcd, this process (controller, runner, proxy,
	// fakewa, the bench's own polls) and the session processes; requests what the API server
	// served meanwhile (its own counters).
	cpu         cpuTimes
	sessionsCPU time.Duration
	requests    string
	// apiGCs is how many collections the API server finished during the round (-1: unknown).
	apiGCs int
	// workUntilMedian is the CPU the stack (this process and its children: API server, etcd,
	// sessions) had used since the round began when the median resource's QR was seen: how much
	// work came before it, which the rest of the machine's load barely changes (wall time it
	// changes a lot). Read once a round, at that QR: a reading walks /proc, and one at every QR
	// cost the bench ~12 ms of CPU each, a tenth of the stack's CPU in the round it measured.
	workUntilMedian time.Duration
	// passes is what the controller's work queue and passes took meanwhile.
	passes string
}

// timeToQRRound creates nameList in ns at once and watches until each shows a QR. Watches, not
// polls: a poll of the resources and the pods every 50 ms took ~200 ms a turn under this load
// (17–18 turns in a 3.5 s round: each list waited ~50 ms for the busy API server), so a QR
// was seen ~100 ms after it was written on average, up to 200 ms.
func (s *sessionStack) timeToQRRound(ctx context.Context, ns string, nameList []string) (qrRound, map[string]time.Time, error) {
	waitQuiet(ctx, time.Minute) // the round before is still stopping its 20 sessions
	r := qrRound{load: loadAvg()}
	clock, err := newProcClock()
	if err != nil {
		return r, nil, err
	}
	benchCtx := ctx // outlives the round: a profile goes on after a round shorter than it
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := client.NewWithWatch(s.cp.cfg, client.Options{Scheme: scheme})
	if err != nil {
		return r, nil, err
	}
	// Both watches start before the first create, so they miss nothing.
	wacs, err := c.Watch(ctx, &whatsappv1alpha1.WhatsAppConnectionList{}, client.InNamespace(ns))
	if err != nil {
		return r, nil, err
	}
	defer wacs.Stop()
	podList := &metav1.PartialObjectMetadataList{}
	podList.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	pods, err := c.Watch(ctx, podList, client.InNamespace(ns))
	if err != nil {
		return r, nil, err
	}
	defer pods.Stop()

	cpu0, busy0 := s.stackCPU(ns), machineBusy()
	parts0 := readCPU()
	req0, reqErr := readAPIRequests(ctx, s.cp.cfg)
	if path := os.Getenv("BENCH_APISERVER_CPUPROFILE"); path != "" {
		// 3 s, or longer to cover a slow round's last status applies too.
		d := envSeconds("BENCH_APISERVER_CPUPROFILE_SECONDS", 3*time.Second)
		go func() {
			if err := saveFromAPIServer(benchCtx, s.cp.cfg, pprofCPU(d), path+"."+ns, d+30*time.Second); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
		}()
	}
	ctl0 := readControllerTimes()
	work0 := stackCPUNow()
	begin := time.Now()
	created := map[string]time.Time{}
	var mu sync.Mutex
	createErr := make(chan error, 1)
	go func() { createErr <- createAll(ctx, s.cp.c, ns, nameList, created, &mu) }()
	qrAt, podAt := map[string]time.Time{}, map[string]time.Time{}
	medianAt := int(math.Ceil(float64(len(nameList)) / 2)) // percentile's rank for p50
	uids := map[string]string{}
	createsDone := false
	for len(qrAt) < len(nameList) || !createsDone {
		select {
		case err := <-createErr:
			if err != nil {
				return r, nil, err
			}
			createsDone = true
		case <-ctx.Done():
			return r, nil, fmt.Errorf("%d of %d resources showed a QR within 2 minutes", len(qrAt), len(nameList))
		case ev, ok := <-wacs.ResultChan():
			if !ok {
				return r, nil, fmt.Errorf("watch of %s ended", ns)
			}
			if w, isWAC := ev.Object.(*whatsappv1alpha1.WhatsAppConnection); isWAC && ev.Type != watch.Deleted {
				if _, seen := qrAt[w.Name]; !seen && w.Status.Connection != nil && w.Status.Connection.QRCode != "" {
					qrAt[w.Name] = time.Now()
					if len(qrAt) == medianAt {
						r.workUntilMedian = stackCPUNow() - work0
					}
				}
			}
		case ev, ok := <-pods.ResultChan():
			if !ok {
				return r, nil, fmt.Errorf("watch of pods in %s ended", ns)
			}
			if p, isMeta := ev.Object.(*metav1.PartialObjectMetadata); isMeta && ev.Type == watch.Added {
				name := strings.TrimSuffix(p.Name, "-session")
				if _, seen := podAt[name]; !seen {
					podAt[name], uids[name] = time.Now(), string(p.UID)
				}
			}
		}
	}
	r.wall = time.Since(begin)
	cpu1, busy1 := s.stackCPU(ns), machineBusy()
	r.machine = (busy1 - busy0).Seconds() / r.wall.Seconds()
	r.stack = (cpu1 - cpu0).Seconds() / r.wall.Seconds()
	r.cpu = readCPU().sub(parts0)
	r.sessionsCPU = (cpu1 - cpu0) - r.cpu.apiServer - r.cpu.etcd - r.cpu.bench
	r.apiGCs = -1
	if req1, err := readAPIRequests(ctx, s.cp.cfg); err == nil && reqErr == nil {
		r.requests = req1.since(req0)
		r.apiGCs = int(req1.gcCycles - req0.gcCycles)
	}
	r.passes = readControllerTimes().since(ctl0)
	// In name order, so that the lists in results.json line up per resource.
	for _, name := range nameList {
		r.qr = append(r.qr, qrAt[name].Sub(created[name]))
		r.pod = append(r.pod, podAt[name].Sub(created[name]))
		started := time.Duration(-1)
		if pid, err := sessionPID(s.bins.session, uids[name]); err == nil {
			if at, err := clock.started(pid); err == nil {
				started = at.Sub(created[name])
			}
		}
		r.process = append(r.process, started)
	}
	return r, created, nil
}

// deleteAllAndWait deletes the resources and waits until they and their session processes are
// gone, so that the next round starts on a quiet stack.
func (s *sessionStack) deleteAllAndWait(ctx context.Context, ns string, nameList []string) error {
	for _, name := range nameList {
		if err := s.cp.c.Delete(ctx, newConnection(ns, name)); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var list whatsappv1alpha1.WhatsAppConnectionList
		if err := s.cp.c.List(ctx, &list, client.InNamespace(ns)); err == nil && len(list.Items) == 0 && len(s.sessionPIDs(ns)) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("resources of %s not gone within 2 minutes", ns)
		}
		if err := ctxtime.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// sessionPIDs are the running session processes of pods in ns (found by the KUBECONFIG in
// their pod folder; the runner names pods' folders by UID, so this lists all session processes
// and keeps those whose pod is in ns).
func (s *sessionStack) sessionPIDs(ns string) []int {
	var pods corev1.PodList
	if err := s.cp.c.List(context.Background(), &pods, client.InNamespace(ns)); err != nil {
		return nil
	}
	var pids []int
	for _, p := range pods.Items {
		if pid, err := sessionPID(s.bins.session, string(p.UID)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stackCPU is the CPU used so far by the control plane, this process and the session
// processes of ns that are running now (a session started during the round counts whole).
func (s *sessionStack) stackCPU(ns string) time.Duration {
	c := readCPU()
	total := c.apiServer + c.etcd + c.bench
	for _, pid := range s.sessionPIDs(ns) {
		cpu, _, _ := procCPU(fmt.Sprintf("/proc/%d/stat", pid))
		total += cpu
	}
	return total
}

// machineBusy is the CPU time all processes of the machine used since boot (/proc/stat: user,
// nice, system, irq, softirq, steal).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		if i < len(f) {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// reportTimeToQR adds the time-to-QR figure over rounds: the figure is the median of the
// rounds' p50s (and p99 over all resources), the detail says each round's split and how busy
// the machine was, which is what moves this figure on a shared two-core machine.
func reportTimeToQR(res *results, rounds []qrRound, n int) {
	var p50s, all, works []time.Duration
	var parts []string
	perRound := []map[string]any{}
	for i, r := range rounds {
		p50 := percentile(r.qr, 50)
		p50s = append(p50s, p50)
		works = append(works, r.workUntilMedian)
		all = append(all, r.qr...)
		var started []time.Duration
		for _, d := range r.process {
			if d >= 0 {
				started = append(started, d)
			}
		}
		parts = append(parts, fmt.Sprintf("round %d: p50 %.2f s, p99 %.2f s (pod created %.2f, process started %.2f; machine busy %.1f of %d cores, %.1f of them the stack: CPU s API server %.2f, etcd %.2f, bench process %.2f, sessions %.2f; the stack's CPU until the median QR %.2f s; API server GC cycles %d; load %s)",
			i+1, p50.Seconds(), percentile(r.qr, 99).Seconds(), percentile(r.pod, 50).Seconds(), percentile(started, 50).Seconds(),
			r.machine, cpus(), r.stack, r.cpu.apiServer.Seconds(), r.cpu.etcd.Seconds(), r.cpu.bench.Seconds(), r.sessionsCPU.Seconds(), r.workUntilMedian.Seconds(), r.apiGCs, r.load))
		if r.requests != "" {
			fmt.Fprintf(os.Stderr, "   round %d, API server requests: %s\n", i+1, r.requests)
		}
		fmt.Fprintf(os.Stderr, "   round %d, controller: %s\n", i+1, r.passes)
		perRound = append(perRound, map[string]any{"p50Seconds": seconds(p50), "p99Seconds": seconds(percentile(r.qr, 99)),
			"qrSeconds": durations(r.qr), "podCreatedSeconds": durations(r.pod), "processStartedSeconds": durations(r.process),
			"podCreatedP50Seconds": seconds(percentile(r.pod, 50)), "processStartedP50Seconds": seconds(percentile(started, 50)),
			"machineBusyCores": round1(r.machine), "stackCores": round1(r.stack),
			"cpuSeconds":  map[string]float64{"apiServer": seconds(r.cpu.apiServer), "etcd": seconds(r.cpu.etcd), "bench": seconds(r.cpu.bench), "sessions": seconds(r.sessionsCPU)},
			"apiRequests": r.requests, "stackCPUUntilQRP50Seconds": seconds(r.workUntilMedian),
			"controller": r.passes, "apiServerGCCycles": r.apiGCs, "load": r.load, "wallSeconds": seconds(r.wall)})
	}
	p50, p99 := percentile(p50s, 50), percentile(all, 99)
	res.add(figure{
		Name: "time to QR", Value: p50.Seconds(), Unit: "s p50", Target: "p50 ≤ 1 s, p99 ≤ 3 s",
		Pass: p50 <= time.Second && p99 <= 3*time.Second,
		Detail: fmt.Sprintf("%d resources at once, %d rounds, median of the rounds' p50 %.2f s (spread %.2f–%.2f s), p99 of all %.2f s; the stack's CPU until the median QR %.2f s (spread %.2f–%.2f s); %s",
			n, len(rounds), p50.Seconds(), minD(p50s).Seconds(), maxD(p50s).Seconds(), p99.Seconds(),
			percentile(works, 50).Seconds(), minD(works).Seconds(), maxD(works).Seconds(), strings.Join(parts, "; ")),
		Extra: map[string]any{"p50Seconds": seconds(p50), "p99Seconds": seconds(p99), "resources": n, "rounds": perRound,
			"stackCPUUntilMedianQRSeconds": seconds(percentile(works, 50))},
	})
}

func cpus() int { return runtime.NumCPU() }

func round1(v float64) float64 { return float64(int(v*10+0.5)) / 10 }

func minD(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func maxD(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
