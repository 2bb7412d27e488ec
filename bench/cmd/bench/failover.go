package main

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/waoperator/whatsapp-operator/controllers"
	"github.com/waoperator/whatsapp-operator/internal/session/ctxtime"
)

// failoverSession are the timings of the failover figure: the defaults. A crash no longer waits
// for the Lease (the controller releases it on the kubelet's report), so the figure does not
// depend on the Lease duration and needs no scaling.
var failoverSession = controllers.DefaultOptions().Session

// failoverTarget is issue 12's: kill -9 of a connected session → connected again, p99.
const failoverTarget = 2 * time.Second

// crashWindow is how long after its start a session that exits counts as crashing (the
// controller then waits CrashBackoff before replacing it); each killed session must be older.
const crashWindow = 30 * time.Second

// benchFailover kills -9 one connected session process per trial, each trial on another
// resource so that no trial waits out the previous one's crash backoff, and measures until the
// resource's new session reports Connected.
func benchFailover(ctx context.Context, o options, bins *binaries, res *results) error {
	res.noteLoad("failover")
	s, err := startSessionStack(ctx, o, bins, &failoverSession)
	if err != nil {
		return err
	}
	defer s.stop()
	const ns = "bench-failover"
	if err := s.cp.namespace(ctx, ns); err != nil {
		return err
	}
	trials := o.Sizes.FailoverTrials
	nameList := names(trials)
	if err := createAll(ctx, s.cp.c, ns, nameList, nil, nil); err != nil {
		return err
	}
	jids, err := s.pair(ctx, ns, nameList, 2*time.Minute)
	if err != nil {
		return err
	}
	if err := waitOlderThan(ctx, s.cp.c, ns, crashWindow+5*time.Second); err != nil {
		return err
	}

	var took []time.Duration
	for i, name := range nameList {
		pod := &corev1.Pod{}
		if err := s.cp.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-session"}, pod); err != nil {
			return err
		}
		pid, err := sessionPID(bins.session, string(pod.UID))
		if err != nil {
			return err
		}
		start := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return err
		}
		if err := s.waitConnected(ctx, ns, name, string(pod.UID), 90*time.Second); err != nil {
			return fmt.Errorf("trial %d: %w", i+1, err)
		}
		took = append(took, time.Since(start))
		fmt.Fprintf(os.Stderr, "   trial %d/%d: %.2f s\n", i+1, trials, took[i].Seconds())
		// Let the API server and the machine settle before the next kill, as unrelated
		// failures would be spread out.
		if err := ctxtime.Sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	maxLive, replacements := 0, 0
	for _, jid := range jids {
		st := s.fw.Device(jid).Stats()
		maxLive = max(maxLive, st.MaxLive)
		replacements += st.Replacements
	}
	p50, p99 := percentile(took, 50), percentile(took, 99)
	res.add(figure{
		Name: "failover", Value: p99.Seconds(), Unit: "s p99", Target: fmt.Sprintf("p99 ≤ %s at the default Lease %s, max live 1", failoverTarget, failoverSession.LeaseDuration),
		Pass: p99 <= failoverTarget && maxLive <= 1 && replacements == 0,
		Detail: fmt.Sprintf("%d trials: p50 %.2f s, p99 %.2f s, min %.2f s; fakewa max live %d, replacements %d",
			trials, p50.Seconds(), p99.Seconds(), percentile(took, 0).Seconds(), maxLive, replacements),
		Extra: map[string]any{"p50Seconds": seconds(p50), "p99Seconds": seconds(p99), "trialsSeconds": durations(took),
			"maxLive": maxLive, "replacements": replacements, "leaseSeconds": failoverSession.LeaseDuration.Seconds()},
	})
	return nil
}

// waitOlderThan waits until every session pod in ns has been running for at least d.
func waitOlderThan(ctx context.Context, c client.Client, ns string, d time.Duration) error {
	for {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return err
		}
		var youngest time.Time
		for _, p := range pods.Items {
			if p.Status.StartTime != nil && p.Status.StartTime.After(youngest) {
				youngest = p.Status.StartTime.Time
			}
		}
		wait := time.Until(youngest.Add(d))
		if wait <= 0 {
			return nil
		}
		if err := ctxtime.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func durations(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = seconds(d)
	}
	return out
}
