package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/controllers"
	"github.com/waoperator/whatsapp-operator/internal/session/ctxtime"
	"github.com/waoperator/whatsapp-operator/internal/waendpoint"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// sessionStack is what `make run FAKE_WHATSAPP=1` runs, plus the counting proxy in front of
// the API server for the session processes.
type sessionStack struct {
	cp     *controlPlane
	fw     *fakewa.Server
	proxy  *countingProxy
	runner *background
	mgr    *background
	bins   *binaries
	work   string
}

func startSessionStack(ctx context.Context, o options, bins *binaries, session *controllers.SessionConfig) (_ *sessionStack, err error) {
	s := &sessionStack{bins: bins, work: filepath.Join(bins.dir, "run-"+time.Now().Format("150405"))}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if s.cp, err = startControlPlane(o); err != nil {
		return nil, err
	}
	if s.fw, err = fakewa.Start(fakewa.Options{}); err != nil {
		return nil, err
	}
	fwConfig := filepath.Join(bins.dir, "fakewa.json")
	if err = s.fw.WriteClientConfig(fwConfig); err != nil {
		return nil, err
	}
	if s.proxy, err = startCountingProxy(s.cp.cfg); err != nil {
		return nil, err
	}
	// $BENCH_SESSION_ENV (space-separated NAME=value, e.g. GOGC=50) goes to every session
	// process, to compare runtime settings on one stack.
	env := append([]string{waendpoint.ConfigEnv + "=" + fwConfig}, strings.Fields(os.Getenv("BENCH_SESSION_ENV"))...)
	sessionCmd, err := sessionCommand(bins)
	if err != nil {
		return nil, err
	}
	if s.runner, err = startRunner(ctx, s.proxy.url, s.work, sessionCmd, env); err != nil {
		return nil, err
	}
	if s.mgr, err = startManager(ctx, s.cp.cfg, session); err != nil {
		return nil, err
	}
	return s, nil
}

// sessionCommand is what the runner starts for a session container: the session binary, or,
// with $BENCH_SESSION_ARGS (space-separated flags, e.g. --zap-time-encoding=rfc3339nano
// --zap-log-level=debug), a script that execs it with those flags added, to read where a
// session's time goes in its logs ($BENCH_KEEP=1 keeps them). The exec keeps the process, so
// its start time and executable are the session's.
func sessionCommand(bins *binaries) (string, error) {
	args := strings.Fields(os.Getenv("BENCH_SESSION_ARGS"))
	if len(args) == 0 {
		return bins.session, nil
	}
	script := filepath.Join(bins.dir, "bin", "session-with-args")
	body := "#!/bin/sh\nexec " + bins.session + " \"$@\" " + strings.Join(args, " ") + "\n"
	return script, os.WriteFile(script, []byte(body), 0o755)
}

func (s *sessionStack) stop() {
	// The manager first, so that it does not react to the runner's pods going away.
	if s.mgr != nil {
		_ = s.mgr.stop()
	}
	if s.runner != nil {
		_ = s.runner.stop()
	}
	if s.proxy != nil {
		s.proxy.close()
	}
	if s.fw != nil {
		_ = s.fw.Close()
	}
	if s.cp != nil {
		s.cp.stop()
	}
}

func (s *sessionStack) get(ctx context.Context, ns, name string) (*whatsappv1alpha1.WhatsAppConnection, error) {
	w := &whatsappv1alpha1.WhatsAppConnection{}
	return w, s.cp.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, w)
}

// pair scans each resource's current QR with its own fake phone and waits until its session
// reports Connected; it returns each device's JID.
func (s *sessionStack) pair(ctx context.Context, ns string, nameList []string, timeout time.Duration) (map[string]types.JID, error) {
	jids := map[string]types.JID{}
	var mu sync.Mutex
	err := parallel(len(nameList), 4, func(i int) error {
		name := nameList[i]
		deadline := time.Now().Add(timeout)
		for {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: not paired within %s", name, timeout)
			}
			w, err := s.get(ctx, ns, name)
			if err == nil && w.Status.Connection != nil && w.Status.Connection.QRCode != "" {
				jid, err := s.fw.Phone(fmt.Sprintf("+1555%07d", i)).ScanQR(ctx, w.Status.Connection.QRCode)
				if err == nil {
					mu.Lock()
					jids[name] = jid
					mu.Unlock()
					break
				}
				// A code that rotated between the read and the scan: read the new one.
			}
			if err := ctxtime.Sleep(ctx, 200*time.Millisecond); err != nil {
				return err
			}
		}
		return s.waitConnected(ctx, ns, name, "", timeout)
	})
	return jids, err
}

// waitConnected waits until the resource's session reports Connected from a pod other than
// notUID.
func (s *sessionStack) waitConnected(ctx context.Context, ns, name, notUID string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		w, err := s.get(ctx, ns, name)
		if err == nil && w.Status.Connection != nil && w.Status.Connection.State == whatsappv1alpha1.SessionConnected &&
			w.Status.Connection.Holder != nil && w.Status.Connection.Holder.UID != notUID {
			return nil
		}
		if time.Now().After(deadline) {
			state := "no status"
			if err == nil && w.Status.Connection != nil {
				state = string(w.Status.Connection.State) + " " + w.Status.Connection.Message
			}
			return fmt.Errorf("%s: not connected within %s (%s, phase %s)", name, timeout, state, w.Status.Phase)
		}
		if err := ctxtime.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// warmUp takes one resource, in a namespace of its own, to a QR and deletes it again, before the
// clock of time to QR starts. Time to QR is what a user feels after `kubectl apply` to an
// operator that is already running, on a cluster where the CRD is not brand new; without this
// the figure measured how the bench had just started things:
//   - the API server holds the first writes of a CRD's resources for ~2 s after the CRD was
//     installed (measured on envtest 1.37: 8 creates right after the install took 2.0 s each,
//     after a 5 s pause 25 ms), and the stack's control plane installed it a moment ago;
//   - startManager returns when the cache has synced the informers that exist before the
//     controller starts; the controller's own watches and workers start after that;
//   - the first session process runs a binary that was just built.
//
// Only the first is large. The warm-up goes through everything a measured resource goes through
// (create, the controller's pass, the runner, a session showing a QR, deletion), so it hides no
// latency that a second resource applied to a running operator would see.
func (s *sessionStack) warmUp(ctx context.Context) error {
	const ns, name = "bench-warmup", "warmup"
	if err := s.cp.namespace(ctx, ns); err != nil {
		return err
	}
	if err := s.cp.c.Create(ctx, newConnection(ns, name)); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		w, err := s.get(ctx, ns, name)
		if err == nil && w.Status.Connection != nil && w.Status.Connection.QRCode != "" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warm-up: no QR within 2 minutes")
		}
		if err := ctxtime.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	// Gone, finalizer released and session stopped, so that it takes no CPU from the figure.
	if err := s.cp.c.Delete(ctx, newConnection(ns, name)); err != nil {
		return err
	}
	for {
		_, err := s.get(ctx, ns, name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warm-up: resource not gone within 2 minutes (last error: %v)", err)
		}
		if err := ctxtime.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// benchSessions: the per-process figures (one session at a time), time to QR on freshly
// applied resources, then some of them are paired and left idle for the session memory and the
// API writes per session-hour, at the default timings.
func benchSessions(ctx context.Context, o options, bins *binaries, res *results) error {
	s, err := startSessionStack(ctx, o, bins, nil)
	if err != nil {
		return err
	}
	defer s.stop()
	const ns = "bench-sessions"
	if err := s.cp.namespace(ctx, ns); err != nil {
		return err
	}
	if err := s.warmUp(ctx); err != nil {
		return err
	}
	if o.wants("process") {
		if err := s.benchProcess(ctx, o, res); err != nil {
			return err
		}
	}
	if !o.wants("qr") && !o.wants("idle") {
		return nil
	}
	res.noteLoad("qr")

	// Time to QR, o.Sizes.QRRounds times: each round but the last in a namespace of its own,
	// deleted (processes gone) before the next; the last round's resources go on to the idle
	// figures. One round is one sample of a figure that moves with what else the two cores run.
	n := max(o.Sizes.QR, o.Sizes.Idle)
	nameList := names(n)
	var rounds []qrRound
	for i := range max(o.Sizes.QRRounds, 1) {
		last := i == max(o.Sizes.QRRounds, 1)-1
		roundNS := ns
		if !last {
			roundNS = fmt.Sprintf("bench-qr-%d", i+1)
			if err := s.cp.namespace(ctx, roundNS); err != nil {
				return err
			}
		}
		r, _, err := s.timeToQRRound(ctx, roundNS, nameList)
		if err != nil {
			return fmt.Errorf("time to QR, round %d: %w", i+1, err)
		}
		rounds = append(rounds, r)
		fmt.Fprintf(os.Stderr, "   time to QR round %d: p50 %.2f s (load %s)\n", i+1, percentile(r.qr, 50).Seconds(), r.load)
		if !last {
			if err := s.deleteAllAndWait(ctx, roundNS, nameList); err != nil {
				return err
			}
		}
	}
	reportTimeToQR(res, rounds, n)

	if !o.wants("idle") {
		return nil
	}
	return benchIdle(ctx, o, s, ns, nameList, res)
}

// benchIdle pairs the first o.Sizes.Idle resources, deletes the others, and measures the idle
// sessions' memory and API writes.
func benchIdle(ctx context.Context, o options, s *sessionStack, ns string, nameList []string, res *results) error {
	res.noteLoad("idle")
	// Only the idle sessions stay: the others would go on rotating QR codes (and writing).
	idle := nameList[:o.Sizes.Idle]
	for _, name := range nameList[o.Sizes.Idle:] {
		if err := s.cp.c.Delete(ctx, newConnection(ns, name)); err != nil {
			return err
		}
	}
	if _, err := s.pair(ctx, ns, idle, 90*time.Second); err != nil {
		return err
	}
	// Settle: the first connection after pairing uploads pre-keys and publishes its state.
	if err := ctxtime.Sleep(ctx, 15*time.Second); err != nil {
		return err
	}

	// Memory twice: 15 s after pairing, and again after the idle window, which is the figure: a
	// session gives back what its start-up used 10 s after it connected
	// (--release-startup-memory-after), and what an idle session touches again comes back over
	// the following minutes.
	early, err := s.sessionMemory(ctx, ns, idle)
	if err != nil {
		return err
	}
	s.proxy.reset()
	window := o.Sizes.IdleWindow
	fmt.Fprintf(os.Stderr, "   counting API writes of %d idle sessions for %s\n", len(idle), window)
	// Read every 10 s through the window, and keep each session's highest: a session unmaps
	// its binary's pages every 30 s (--release-binary-pages-every), so one reading would fall
	// anywhere between its low and its high.
	var late, peak memorySample
	var readings []int64 // every RSS reading of every session, for the distribution
	for end := time.Now().Add(window); time.Now().Before(end); {
		if err := ctxtime.Sleep(ctx, min(memorySampleEvery, time.Until(end))); err != nil {
			return err
		}
		if late, err = s.sessionMemory(ctx, ns, idle); err != nil {
			return err
		}
		peak = peak.highest(late)
		readings = append(readings, late.rss...)
		fmt.Fprintf(os.Stderr, "   idle memory, %s to go: RSS median %.1f MiB, max %.1f MiB\n",
			time.Until(end).Round(time.Second), mib(median(late.rss)), mib(slices.Max(late.rss)))
	}
	counts := s.proxy.snapshot()
	total := 0
	byKind := map[string]int{}
	for _, name := range idle {
		user := "system:serviceaccount:" + ns + ":" + name + "-session"
		for k, v := range counts[user] {
			if isWrite(k) {
				total += v
				byKind[k] += v
			}
		}
	}
	peak.report(res, early, late, readings, window)
	perHour := float64(total) / float64(len(idle)) * (float64(time.Hour) / float64(window))
	res.add(figure{
		Name: "API writes", Value: perHour, Unit: "per session-hour", Target: "≤ 400", Pass: perHour <= 400,
		Detail: fmt.Sprintf("%d idle sessions, %s counted at the proxy: %d writes %v", len(idle), window, total, byKind),
		Extra:  map[string]any{"writes": total, "byKind": byKind, "windowSeconds": window.Seconds(), "sessions": len(idle)},
	})
	return nil
}

// memorySample is the memory of each idle session at one moment, in KiB.
type memorySample struct {
	rss, pss, anon, file []int64
}

// memorySampleEvery is how often the idle sessions' memory is read through the idle window.
const memorySampleEvery = 10 * time.Second

// highest keeps, per session, the reading of m or o with the larger RSS (o: a reading of the
// same sessions in the same order).
func (m memorySample) highest(o memorySample) memorySample {
	if len(m.rss) == 0 {
		return o
	}
	out := memorySample{}
	for i := range m.rss {
		src := m
		if o.rss[i] > m.rss[i] {
			src = o
		}
		out.rss, out.pss = append(out.rss, src.rss[i]), append(out.pss, src.pss[i])
		out.anon, out.file = append(out.anon, src.anon[i]), append(out.file, src.file[i])
	}
	return out
}

func (s *sessionStack) sessionMemory(ctx context.Context, ns string, idle []string) (memorySample, error) {
	var m memorySample
	for _, name := range idle {
		pid, err := s.pidOf(ctx, ns, name)
		if err != nil {
			return m, err
		}
		st, err := procStatus(pid)
		if err != nil {
			return m, err
		}
		m.rss, m.pss = append(m.rss, st["VmRSS"]), append(m.pss, st["Pss"])
		m.anon, m.file = append(m.anon, st["RssAnon"]), append(m.file, st["RssFile"])
	}
	return m, nil
}

// quantile is the q-th percentile of v (nearest rank); 0 for none.
func quantile(v []int64, q int) int64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[min(len(v)-1, len(v)*q/100)]
}

func median(v []int64) int64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// report adds the session memory figures (RSS of the largest, PSS per session with all of them
// on one node) from m, each session's highest reading through the idle window; early is the
// reading 15 s after pairing, end the last one of the window, readings all of them.
func (m memorySample) report(res *results, early, end memorySample, readings []int64, window time.Duration) {
	largest := 0
	for i := range m.rss {
		if m.rss[i] > m.rss[largest] {
			largest = i
		}
	}
	maxRSS := m.rss[largest]
	res.add(figure{
		Name: "session memory", Value: mib(maxRSS), Unit: "MiB RSS (max)", Target: "≤ 24 MiB", Pass: mib(maxRSS) <= 24,
		Detail: fmt.Sprintf("%d connected sessions idle %s, each one's highest of readings every %s: median %.1f MiB, max %.1f MiB (VmRSS; of the max, anonymous %.1f MiB, file-backed %.1f MiB; PSS %.1f MiB); at the end of the window median %.1f MiB; all %d readings p50 %.1f, p90 %.1f MiB; 15 s after pairing median %.1f MiB (anonymous %.1f, file-backed %.1f)",
			len(m.rss), window, memorySampleEvery, mib(median(m.rss)), mib(maxRSS), mib(m.anon[largest]), mib(m.file[largest]), mib(m.pss[largest]),
			mib(median(end.rss)), len(readings), mib(quantile(readings, 50)), mib(quantile(readings, 90)),
			mib(median(early.rss)), mib(median(early.anon)), mib(median(early.file))),
		Extra: map[string]any{"rssKiB": m.rss, "anonKiB": m.anon, "fileKiB": m.file, "maxAnonKiB": m.anon[largest],
			"maxFileKiB": m.file[largest], "maxPssKiB": m.pss[largest], "idleSeconds": window.Seconds(),
			"earlyRssKiB": early.rss, "earlyAnonKiB": early.anon, "earlyFileKiB": early.file,
			"endRssKiB": end.rss, "endAnonKiB": end.anon, "endFileKiB": end.file, "sampleEverySeconds": memorySampleEvery.Seconds(),
			"readingsP50KiB": quantile(readings, 50), "readingsP90KiB": quantile(readings, 90)},
	})
	// PSS divides each shared page among the processes that map it: with n sessions on a node,
	// what the node pays per session (the binary's pages once, the heaps each).
	res.add(figure{
		Name: "session PSS", Value: mib(median(m.pss)), Unit: fmt.Sprintf("MiB PSS (median of %d on one node)", len(m.pss)),
		Target: "reported", Pass: true,
		Detail: fmt.Sprintf("%d connected idle sessions, at each one's highest RSS: PSS median %.1f MiB, max %.1f MiB; at the end of the window median %.1f MiB; 15 s after pairing median %.1f MiB",
			len(m.pss), mib(median(m.pss)), mib(slices.Max(m.pss)), mib(median(end.pss)), mib(median(early.pss))),
		Extra: map[string]any{"pssKiB": m.pss, "earlyPssKiB": early.pss, "endPssKiB": end.pss},
	})
}

// pidOf is the session process of the resource's current pod.
func (s *sessionStack) pidOf(ctx context.Context, ns, name string) (int, error) {
	pod := &corev1.Pod{}
	if err := s.cp.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-session"}, pod); err != nil {
		return 0, err
	}
	return sessionPID(s.bins.session, string(pod.UID))
}
