package chaos

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

const (
	namespace   = "chaos"
	connections = 4
	// defaultFaults covers every kind and keeps the default run within about nine minutes on two
	// cores: at the default timings a partition or freeze takes a Lease duration to fail over.
	defaultFaults = 30
	// recoveryBound is how long every connection has to be Connected again after a wave; the
	// slowest paths wait a Lease duration (40 s) for proof that a session is gone: a lost node,
	// a frozen session, an API server restart that outlived a renewal.
	recoveryBound = 60 * time.Second
	// apiRestartBound is the bound after an API server restart. client-go's reflectors back off
	// exponentially while the server is down (up to 30 s, jittered up to 60 s, reset only
	// after 2 min without failure), so after a few restarts the runner's and controller's
	// watches may take that long to come back; a kubelet has the same backoff.
	apiRestartBound = 90 * time.Second
	pollInterval    = 100 * time.Millisecond
)

func TestChaos(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", v, err)
		}
	}
	nFaults := defaultFaults
	if v := os.Getenv("CHAOS_FAULTS"); v != "" {
		var err error
		if nFaults, err = strconv.Atoi(v); err != nil || nFaults < 1 {
			t.Fatalf("CHAOS_FAULTS=%q: want a positive number", v)
		}
	}
	t.Logf("chaos seed %d, %d faults (replay: CHAOS_SEED=%d CHAOS_FAULTS=%d)", seed, nFaults, seed, nFaults)

	conns := make([]string, connections)
	for i := range conns {
		conns[i] = fmt.Sprintf("wac-%d", i)
	}
	schedule := newSchedule(rand.New(rand.NewPCG(seed, seed)), nFaults, conns)
	plan := waves(schedule)
	for i, w := range plan {
		t.Logf("wave %d: %s", i+1, describeWave(w))
	}

	dir, err := os.MkdirTemp("", "chaos-")
	if err != nil {
		t.Fatal(err)
	}
	// The stack's logs and the pods' folders are what explains a failure: kept then.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs kept in %s (stack.log, run/pods/<uid>/session.log)", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	start := time.Now()
	s := startStack(t, dir)
	h := &harness{t: t, s: s, conns: conns, jids: map[string]types.JID{}, pids: map[k8stypes.UID]int{}}
	h.pair()
	t.Logf("stack up and %d connections paired in %s", len(conns), time.Since(start).Round(time.Millisecond))

	for i, w := range plan {
		if !h.runWave(i+1, w) {
			break
		}
	}
	h.report(schedule)
	t.Logf("chaos run took %s", time.Since(start).Round(time.Second))
}

type harness struct {
	t     *testing.T
	s     *stack
	conns []string
	jids  map[string]types.JID
	// events, when set, is every connection's spec.events.
	events *whatsappv1alpha1.EventsSpec

	pidsMu sync.Mutex
	pids   map[k8stypes.UID]int // hint for sessionProcess

	censusSeen int
	findings   []string
}

// pair creates the connections and scans each one's QR with its own fake phone.
func (h *harness) pair() {
	t, c := h.t, h.s.c
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range h.conns {
		wac := &whatsappv1alpha1.WhatsAppConnection{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec: whatsappv1alpha1.WhatsAppConnectionSpec{
				DeviceName: "chaos " + name,
				Pairing:    whatsappv1alpha1.PairingSpec{Method: whatsappv1alpha1.PairingMethodQR},
				Store:      whatsappv1alpha1.StoreSpec{SQLite: &whatsappv1alpha1.SQLiteStore{Size: resource.MustParse("1Gi")}},
				Events:     h.events,
			},
		}
		if err := c.Create(ctx, wac); err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range h.conns {
		phone := h.s.fw.Phone(fmt.Sprintf("+1 555 000 10%02d", i))
		// As a person would: a code that rotated or whose connection closed between reading it
		// and scanning it (a busy machine) is scanned again from the status, not a failure.
		if err := poll(ctx, func() (bool, error) {
			wac := &whatsappv1alpha1.WhatsAppConnection{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, wac); err != nil {
				return false, nil
			}
			cs := wac.Status.Connection
			if cs == nil || cs.QRCode == "" {
				return false, nil
			}
			jid, err := phone.ScanQR(ctx, cs.QRCode)
			if errors.Is(err, fakewa.ErrUnknownRef) || errors.Is(err, fakewa.ErrRefExpired) {
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("scanning %s's QR: %w", name, err)
			}
			h.jids[name] = jid
			return true, nil
		}); err != nil {
			t.Fatalf("%s: no QR code scanned: %v", name, err)
		}
	}
	if err := poll(ctx, func() (bool, error) {
		st := h.observe(ctx)
		for _, name := range h.conns {
			if !st[name].connected {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("not every connection Connected after pairing: %v\n%s", err, h.describe(ctx))
	}
}

// connState is what the harness sees of one connection at one moment.
type connState struct {
	connected bool
	holder    k8stypes.UID
	why       string
}

// observe judges every connection Connected only when all the parts agree: the controller's
// phase, the session's status from the current pod incarnation, that pod's process running
// (not stopped), and the fake WhatsApp holding exactly one live login for the device. A stale
// status from a dead or frozen session therefore never counts.
func (h *harness) observe(ctx context.Context) map[string]connState {
	out := map[string]connState{}
	list := &whatsappv1alpha1.WhatsAppConnectionList{}
	if err := h.s.c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		for _, name := range h.conns {
			out[name] = connState{why: "list: " + err.Error()}
		}
		return out
	}
	for i := range list.Items {
		wac := &list.Items[i]
		out[wac.Name] = h.judge(wac)
	}
	return out
}

func (h *harness) judge(wac *whatsappv1alpha1.WhatsAppConnection) connState {
	st, cs := wac.Status, wac.Status.Connection
	switch {
	case st.Phase != whatsappv1alpha1.PhaseConnected:
		return connState{why: "phase " + string(st.Phase)}
	case cs == nil || cs.State != whatsappv1alpha1.SessionConnected || cs.Holder == nil:
		return connState{why: "session state not Connected"}
	}
	holder := k8stypes.UID(cs.Holder.UID)
	pod := h.s.census.current(wac.Name)
	switch {
	case pod == nil:
		return connState{holder: holder, why: "no single session pod"}
	case pod.UID != holder:
		return connState{holder: holder, why: "status from an old pod"}
	case pod.DeletionTimestamp != nil:
		return connState{holder: holder, why: "pod terminating"}
	}
	h.pidsMu.Lock()
	hint := h.pids[holder]
	h.pidsMu.Unlock()
	pid, state, ok := sessionProcess(holder, hint)
	if !ok || state == 'T' || state == 't' || state == 'Z' || state == 'X' {
		return connState{holder: holder, why: fmt.Sprintf("session process not running (state %q)", state)}
	}
	h.pidsMu.Lock()
	h.pids[holder] = pid
	h.pidsMu.Unlock()
	if live := h.s.fw.Device(h.jids[wac.Name]).Stats().Live; live != 1 {
		return connState{holder: holder, why: fmt.Sprintf("fakewa live=%d", live)}
	}
	return connState{connected: true, holder: holder}
}

// runWave injects the wave's faults together, waits until every connection is Connected again
// (by a pod other than the one a fault hit), measures each fault's failover and checks the
// invariants. It reports false when the stack did not recover, which ends the run.
func (h *harness) runWave(n int, w []*fault) bool {
	t := h.t
	before := h.deviceStats()
	bound := recoveryBound
	for _, f := range w {
		if f.kind == restartAPIServer {
			bound = apiRestartBound
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound+10*time.Second)
	defer cancel()

	victims := map[string]*fault{}
	for _, f := range w {
		if !f.kind.global() {
			pod := h.s.census.current(f.target)
			if pod == nil {
				t.Errorf("wave %d: %s has no single session pod before the fault", n, f.target)
				return false
			}
			f.victim = pod.UID
			victims[f.target] = f
		}
	}
	errs := make([]error, len(w))
	var injecting sync.WaitGroup
	for i, f := range w {
		f.at = time.Now()
		injecting.Go(func() { errs[i] = h.inject(ctx, f) })
	}
	injected := make(chan struct{})
	go func() { injecting.Wait(); close(injected) }()

	recovered := map[string]time.Time{}
	deadline := time.Now().Add(bound)
	var last map[string]connState
	for {
		var done bool
		select {
		case <-injected:
			done = true
		default:
		}
		last = h.observe(ctx)
		now := time.Now()
		for _, name := range h.conns {
			st := last[name]
			if _, ok := recovered[name]; ok || !st.connected {
				continue
			}
			if f := victims[name]; f != nil && st.holder == f.victim {
				continue
			}
			// After a global fault only what is seen once it is over counts.
			if !done && len(victims) == 0 {
				continue
			}
			recovered[name] = now
		}
		if done && len(recovered) == len(h.conns) {
			break
		}
		if now.After(deadline) {
			<-injected
			var notYet []string
			for i, err := range errs {
				if err != nil {
					notYet = append(notYet, fmt.Sprintf("injecting %s: %v", w[i], err))
				}
			}
			for _, name := range h.conns {
				if _, ok := recovered[name]; !ok {
					notYet = append(notYet, name+": "+last[name].why)
				}
			}
			t.Errorf("wave %d [%s]: not Connected again within %s: %s\n%s", n, describeWave(w), bound,
				strings.Join(notYet, "; "), h.describe(context.Background()))
			return false
		}
		time.Sleep(pollInterval)
	}
	for i, f := range w {
		if errs[i] != nil {
			t.Errorf("wave %d: injecting %s: %v", n, f, errs[i])
			return false
		}
		if f.kind == loseNode {
			// Measured by the fault itself, before it brings the node back.
		} else if f.kind.global() {
			for _, at := range recovered {
				f.failover = max(f.failover, at.Sub(f.at))
			}
		} else {
			f.failover = recovered[f.target].Sub(f.at)
		}
	}
	parts := make([]string, len(w))
	for i, f := range w {
		parts[i] = fmt.Sprintf("%s → %s", f, f.failover.Round(time.Millisecond))
		if f.kind == restartAPIServer {
			parts[i] += " (" + h.s.lastAPIRestart + ")"
		}
	}
	t.Logf("wave %d: %s", n, strings.Join(parts, ", "))
	h.checkInvariants(n, w, before)
	return true
}

func (h *harness) inject(ctx context.Context, f *fault) error {
	switch f.kind {
	case killSession, stopSession:
		pid, _, ok := sessionProcess(f.victim, 0)
		if !ok {
			return fmt.Errorf("no process for pod %s", f.victim)
		}
		if f.kind == killSession {
			return syscall.Kill(pid, syscall.SIGKILL)
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return err
		}
		time.Sleep(f.hold) // the fault itself: frozen past its Lease
		// By now the controller has found it frozen and replaced its pod, whose process the
		// runner has killed: ESRCH is the expected answer.
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		return nil
	case cutAPI:
		p := h.s.proxy(f.victim)
		if p == nil {
			return fmt.Errorf("no proxy for pod %s", f.victim)
		}
		p.Cut()
		time.Sleep(f.hold) // the fault itself: partitioned past its Lease
		p.Restore()
		return nil
	case deletePod, forceDeletePod:
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: h.s.census.current(f.target).Name}}
		opts := []client.DeleteOption{client.Preconditions{UID: &f.victim}}
		if f.kind == forceDeletePod {
			opts = append(opts, client.GracePeriodSeconds(0))
		}
		return h.s.c.Delete(ctx, pod, opts...)
	case restartManager:
		if err := h.s.stopManager(); err != nil {
			return err
		}
		time.Sleep(f.hold) // the fault itself: no controller for a while
		return h.s.startManager()
	case restartAPIServer:
		return h.s.restartAPIServer()
	case stallAPIServer:
		return h.s.stallAPIServer(apiStall)
	case loseNode:
		return h.loseNode(ctx, f)
	}
	return fmt.Errorf("unknown fault %s", f.kind)
}

// loseNode loses the node of some session (its kubelet stops, its processes freeze, the Node
// turns NotReady), waits until every session that ran there is Connected again elsewhere, which
// is the fault's failover, then brings the node back (its deleted pods' processes are killed).
// WhatsApp's side of a lost node is that its TCP connections die: the real service notices a
// silent client by its missing pings; here the fake server drops them at once. The frozen
// clients learn nothing of it.
func (h *harness) loseNode(ctx context.Context, f *fault) error {
	node := nodes[f.n%len(nodes)]
	victims := h.podsOn(node)
	if len(victims) == 0 {
		node = nodes[(f.n+1)%len(nodes)]
		victims = h.podsOn(node)
	}
	runner := h.s.runners[node]
	if err := runner.LoseNode(ctx); err != nil {
		return err
	}
	for name := range victims {
		if _, err := h.s.fw.Device(h.jids[name]).DropConnections(); err != nil {
			return err
		}
	}
	err := poll(ctx, func() (bool, error) {
		st := h.observe(ctx)
		for name, uid := range victims {
			if !st[name].connected || st[name].holder == uid {
				return false, nil
			}
		}
		return true, nil
	})
	f.failover = time.Since(f.at)
	h.t.Logf("lose-node %s: %d session(s) moved in %s", node, len(victims), f.failover.Round(time.Millisecond))
	return errors.Join(err, runner.ReturnNode(ctx))
}

// podsOn maps each connection whose session pod runs on node to that pod's UID.
func (h *harness) podsOn(node string) map[string]k8stypes.UID {
	out := map[string]k8stypes.UID{}
	for _, name := range h.conns {
		if pod := h.s.census.current(name); pod != nil && pod.Spec.NodeName == node {
			out[name] = pod.UID
		}
	}
	return out
}

func (h *harness) deviceStats() map[string]fakewa.DeviceStats {
	out := map[string]fakewa.DeviceStats{}
	for name, jid := range h.jids {
		out[name] = h.s.fw.Device(jid).Stats()
	}
	return out
}

// checkInvariants: never two live clients per device (MaxLive ≤ 1 and no replacement, which is
// how fakewa shows two clients fighting), never two pods per connection.
func (h *harness) checkInvariants(n int, w []*fault, before map[string]fakewa.DeviceStats) {
	for _, name := range h.conns {
		st := h.s.fw.Device(h.jids[name]).Stats()
		if st.MaxLive > 1 {
			h.finding(fmt.Sprintf("wave %d [%s]: device %s of %s had %d live connections at once; timeline: %s",
				n, describeWave(w), st.JID, name, st.MaxLive, timeline(st, before[name])))
		}
		if d := st.Logins - before[name].Logins; d > 0 && stalled(w) {
			h.finding(fmt.Sprintf("wave %d [%s]: device %s of %s logged in %d time(s) again: its session dropped WhatsApp over a %s API server stall; timeline: %s",
				n, describeWave(w), st.JID, name, d, apiStall, timeline(st, before[name])))
		}
		if d := st.Replacements - before[name].Replacements; d > 0 {
			h.finding(fmt.Sprintf("wave %d [%s]: device %s of %s was replaced %d time(s) (two clients with its keys); timeline: %s",
				n, describeWave(w), st.JID, name, d, timeline(st, before[name])))
		}
	}
	v := h.s.census.Violations()
	for _, line := range v[h.censusSeen:] {
		h.finding(fmt.Sprintf("wave %d [%s]: %s", n, describeWave(w), line))
	}
	h.censusSeen = len(v)
}

func stalled(w []*fault) bool {
	for _, f := range w {
		if f.kind == stallAPIServer {
			return true
		}
	}
	return false
}

func (h *harness) finding(s string) {
	h.findings = append(h.findings, s)
	h.t.Error("INVARIANT: " + s)
}

// timeline is the device's events since the wave began.
func timeline(st, before fakewa.DeviceStats) string {
	var parts []string
	for _, e := range st.Timeline[min(len(before.Timeline), len(st.Timeline)):] {
		parts = append(parts, fmt.Sprintf("%+v", e))
	}
	return strings.Join(parts, " | ")
}

// describe is the state of every connection, for a failure message.
func (h *harness) describe(ctx context.Context) string {
	var b strings.Builder
	list := &whatsappv1alpha1.WhatsAppConnectionList{}
	if err := h.s.c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return "listing connections: " + err.Error()
	}
	for i := range list.Items {
		wac := &list.Items[i]
		fmt.Fprintf(&b, "  %s: phase=%s sessionPod=%s judged=%q", wac.Name, wac.Status.Phase, wac.Status.SessionPod, h.judge(wac).why)
		if cs := wac.Status.Connection; cs != nil {
			fmt.Fprintf(&b, " state=%s holder=%+v", cs.State, cs.Holder)
		}
		for _, c := range wac.Status.Conditions {
			if c.Status == metav1.ConditionFalse || c.Type == whatsappv1alpha1.ConditionConflict {
				fmt.Fprintf(&b, " [%s=%s %s: %s]", c.Type, c.Status, c.Reason, c.Message)
			}
		}
		if p := h.s.census.current(wac.Name); p != nil {
			fmt.Fprintf(&b, " pod uid=%s phase=%s", p.UID, p.Status.Phase)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func (h *harness) report(schedule []*fault) {
	t := h.t
	byKind := map[faultKind][]time.Duration{}
	for _, f := range schedule {
		if f.failover > 0 {
			byKind[f.kind] = append(byKind[f.kind], f.failover)
		}
	}
	t.Logf("failover (fault → Connected again), %d faults:", len(schedule))
	var all []time.Duration
	for _, k := range faultKinds {
		d := byKind[k.kind]
		all = append(all, d...)
		if len(d) == 0 {
			t.Logf("  %-18s n=0", k.kind)
			continue
		}
		t.Logf("  %-18s n=%-3d p50=%-8s p99=%-8s max=%s", k.kind, len(d), percentile(d, 0.5), percentile(d, 0.99), percentile(d, 1))
	}
	if len(all) > 0 {
		t.Logf("  %-18s n=%-3d p50=%-8s p99=%-8s max=%s", "all", len(all), percentile(all, 0.5), percentile(all, 0.99), percentile(all, 1))
	}
	for _, name := range h.conns {
		st := h.s.fw.Device(h.jids[name]).Stats()
		t.Logf("  device %s (%s): MaxLive=%d Replacements=%d Logins=%d Live=%d", st.JID, name, st.MaxLive, st.Replacements, st.Logins, st.Live)
	}
	t.Logf("  kube-apiserver restarts that needed SIGKILL after 5 s: %d", h.s.apiKills)
	t.Logf("  two-pod census violations: %d; invariant findings: %d", len(h.s.census.Violations()), len(h.findings))
}

// percentile is the nearest-rank percentile.
func percentile(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))].Round(time.Millisecond)
}

// poll calls cond every pollInterval until it is true, returns an error or ctx ends.
func poll(ctx context.Context, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.New("timed out")
		case <-time.After(pollInterval):
		}
	}
}
