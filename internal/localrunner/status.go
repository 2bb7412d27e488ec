package localrunner

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// writeStatus reports the run's current state through the status subresource. Every write
// is built from the latest state, so a write that loses a race is simply superseded.
func (run *podRun) writeStatus(ctx context.Context) error {
	return run.updateStatus(ctx, run.status)
}

func (run *podRun) writeStatusLogged(ctx context.Context) {
	if err := run.writeStatus(ctx); err != nil && ctx.Err() == nil {
		run.log.Error(err, "cannot report the pod's status")
	}
}

// writePendingStatus reports a pod that waits for its configuration, as a kubelet reports
// CreateContainerConfigError.
func (run *podRun) writePendingStatus(ctx context.Context, msg string) error {
	return run.updateStatus(ctx, func(old corev1.PodStatus) corev1.PodStatus {
		st := run.base(old)
		st.Phase = corev1.PodPending
		for _, c := range run.pod.Spec.Containers {
			st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image, Started: ptr.To(false),
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}},
			})
		}
		setConditions(&st, old.Conditions, false, false)
		return st
	})
}

func (run *podRun) updateStatus(ctx context.Context, build func(corev1.PodStatus) corev1.PodStatus) error {
	run.statusMu.Lock()
	defer run.statusMu.Unlock()
	if run.r.lost.Load() {
		return nil // a lost node reports nothing
	}
	pods := run.r.cs.CoreV1().Pods(run.pod.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := pods.Get(ctx, run.pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if pod.UID != run.uid {
			return nil // a newer pod under the same name: not ours to report on
		}
		pod.Status = build(pod.Status)
		_, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// base keeps what the API server set (qosClass, conditions of others) and adds the node's
// addresses and the start time.
func (run *podRun) base(old corev1.PodStatus) corev1.PodStatus {
	st := corev1.PodStatus{
		QOSClass: old.QOSClass,
		HostIP:   loopback, HostIPs: []corev1.HostIP{{IP: loopback}},
		PodIP: loopback, PodIPs: []corev1.PodIP{{IP: loopback}},
		StartTime: old.StartTime,
	}
	if st.StartTime == nil {
		st.StartTime = ptr.To(run.startTime)
	}
	return st
}

// status is the pod status a kubelet would report for the run's state.
func (run *podRun) status(old corev1.PodStatus) corev1.PodStatus {
	run.mu.Lock()
	defer run.mu.Unlock()
	st := run.base(old)
	running, failed := 0, false
	allReady := len(run.pod.Spec.Containers) > 0
	for i, spec := range run.pod.Spec.Containers {
		cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, ImageID: spec.Image, Started: ptr.To(false)}
		var c *containerRun
		if i < len(run.containers) {
			c = run.containers[i]
		}
		switch {
		case c != nil && c.proc != nil:
			p := c.proc
			cs.ContainerID = fmt.Sprintf("local://%d", p.cmd.Process.Pid)
			if p.exited() {
				reason := "Completed"
				if p.exitCode != 0 {
					reason, failed = "Error", true
				}
				cs.State.Terminated = &corev1.ContainerStateTerminated{
					ExitCode: p.exitCode, Reason: reason, Message: p.message(), ContainerID: cs.ContainerID,
					StartedAt: metav1.NewTime(p.started), FinishedAt: metav1.NewTime(p.finished),
				}
			} else {
				running++
				cs.Started = ptr.To(true)
				cs.Ready = c.ready
				cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(p.started)}
			}
		case c != nil && c.startErr != "":
			failed = true
			cs.State.Terminated = &corev1.ContainerStateTerminated{
				ExitCode: 128, Reason: "StartError", Message: c.startErr,
				StartedAt: run.startTime, FinishedAt: run.startTime,
			}
		case run.lost:
			failed = true
			// What a kubelet reports for a container it can no longer find.
			cs.State.Terminated = &corev1.ContainerStateTerminated{
				ExitCode: 137, Reason: "ContainerStatusUnknown", Message: run.failure,
				StartedAt: run.startTime, FinishedAt: run.startTime,
			}
		default:
			failed = true
			cs.State.Terminated = &corev1.ContainerStateTerminated{
				ExitCode: 128, Reason: "StartError", Message: run.failure,
				StartedAt: run.startTime, FinishedAt: run.startTime,
			}
		}
		allReady = allReady && cs.Ready
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	switch {
	case running > 0 && run.failure == "":
		st.Phase = corev1.PodRunning
	case failed || run.failure != "":
		st.Phase = corev1.PodFailed
		st.Message = run.failure
	default:
		st.Phase = corev1.PodSucceeded
	}
	setConditions(&st, old.Conditions, st.Phase == corev1.PodRunning && allReady, st.Phase != corev1.PodPending)
	return st
}

// setConditions sets the four pod conditions a kubelet owns and keeps everyone else's; a
// condition's transition time moves only when its status does.
func setConditions(st *corev1.PodStatus, old []corev1.PodCondition, ready, initialized bool) {
	now := metav1.Now()
	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	want := map[corev1.PodConditionType]corev1.ConditionStatus{
		corev1.PodScheduled:              corev1.ConditionTrue,
		corev1.PodInitialized:            boolStatus(initialized),
		corev1.PodReadyToStartContainers: boolStatus(initialized && !terminal),
		corev1.ContainersReady:           boolStatus(ready),
		corev1.PodReady:                  boolStatus(ready),
	}
	order := []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled}
	prev := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range old {
		if _, ours := want[c.Type]; ours {
			prev[c.Type] = c
		} else {
			st.Conditions = append(st.Conditions, c)
		}
	}
	for _, t := range order {
		c := corev1.PodCondition{Type: t, Status: want[t], LastTransitionTime: now}
		if p, ok := prev[t]; ok && p.Status == c.Status {
			c.LastTransitionTime = p.LastTransitionTime
		}
		if c.Status == corev1.ConditionFalse && (t == corev1.PodReady || t == corev1.ContainersReady) {
			c.Reason = "ContainersNotReady"
			if terminal {
				c.Reason = "PodCompleted"
			}
		}
		st.Conditions = append(st.Conditions, c)
	}
}

func boolStatus(b bool) corev1.ConditionStatus {
	if b {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}
