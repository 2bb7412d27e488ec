package localrunner

import (
	"context"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// LoseNode plays a node that drops off the network, for tests: its kubelet stops (no heartbeat,
// no pod status, no binding, no deletion), every process it runs is frozen with SIGSTOP, and the
// Node's Ready condition turns Unknown, as the node lifecycle controller reports it once the
// node's heartbeats have been missing for its grace period (which this skips). The processes
// keep their sockets, as on a real partitioned node; they do nothing until ReturnNode.
func (r *Runner) LoseNode(ctx context.Context) error {
	if r.lost.Swap(true) {
		return nil
	}
	r.signalAll(func(*podRun) syscall.Signal { return syscall.SIGSTOP })
	r.log.Info("node lost: kubelet stopped, processes frozen")
	nodes := r.cs.CoreV1().Nodes()
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		node, err := nodes.Get(ctx, r.opts.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		for i := range node.Status.Conditions {
			if c := &node.Status.Conditions[i]; c.Type == corev1.NodeReady {
				c.Status, c.Reason, c.Message = corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status."
				c.LastTransitionTime = now
			}
		}
		_, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
}

// ReturnNode brings a lost node back, as a kubelet that restarts and resyncs: the processes of
// pods that were deleted (or replaced) meanwhile are killed, the others resume, the Node is
// Ready again and every pod is synced afresh.
func (r *Runner) ReturnNode(ctx context.Context) error {
	if !r.lost.Load() {
		return nil
	}
	r.signalAll(func(run *podRun) syscall.Signal {
		if pod := r.lookup(run.key); pod == nil || pod.UID != run.uid || pod.DeletionTimestamp != nil {
			return syscall.SIGKILL
		}
		return syscall.SIGCONT
	})
	r.lost.Store(false)
	r.log.Info("node back: kubelet running again")
	for _, key := range append(r.nodePods.ListKeys(), r.unscheduled.ListKeys()...) {
		r.queue.Add(key)
	}
	return r.reportNodeStatus(ctx)
}

// signalAll sends each run's process groups the signal sig picks for it.
func (r *Runner) signalAll(sig func(*podRun) syscall.Signal) {
	r.mu.Lock()
	runs := make([]*podRun, 0, len(r.runs))
	for _, run := range r.runs {
		runs = append(runs, run)
	}
	r.mu.Unlock()
	for _, run := range runs {
		s := sig(run)
		for _, c := range run.containers {
			if c.proc != nil && !c.proc.exited() {
				_ = syscall.Kill(-c.proc.cmd.Process.Pid, s)
			}
		}
	}
}
