package localrunner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
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

// updateStatus reports build(last) as a kubelet does: a strategic merge patch of pods/status
// from the status last seen to the new one, naming the pod's UID as a precondition, so that a
// newer pod under the same name is never written (the API server refuses to change the UID). No read
// comes first: last is what the API server returned for the previous write, or the pod as the
// watch showed it for the first; a patch carries only what changed, so what others set since
// (conditions of their own) stays. A GET and a PUT of the whole pod per change were twice the
// requests, and 20 pods starting at once wait on the API server for their QR codes.
func (run *podRun) updateStatus(ctx context.Context, build func(corev1.PodStatus) corev1.PodStatus) error {
	run.statusMu.Lock()
	defer run.statusMu.Unlock()
	if run.r.lost.Load() {
		return nil // a lost node reports nothing
	}
	next := build(run.last)
	patch, unchanged, err := statusPatch(run.uid, run.last, next)
	if err != nil || unchanged {
		return err
	}
	pod, err := run.r.cs.CoreV1().Pods(run.pod.Namespace).Patch(ctx, run.pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) || otherPod(err) {
		return nil // gone, or a newer pod under the same name: not ours to report on
	}
	if err != nil {
		return err
	}
	run.last = pod.Status
	return nil
}

// otherPod says the patch was refused because the pod under that name has another UID: the API
// server rejects a change of metadata.uid as invalid (immutable field).
func otherPod(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, cause := range status.Status().Details.Causes {
		if cause.Field == "metadata.uid" {
			return true
		}
	}
	return false
}

// statusPatch is the kubelet's pods/status patch from old to next: the changed fields, and the
// UID as a precondition. unchanged says the patch would change nothing.
func statusPatch(uid types.UID, old, next corev1.PodStatus) (patch []byte, unchanged bool, err error) {
	oldJSON, err := json.Marshal(corev1.Pod{Status: old})
	if err != nil {
		return nil, false, err
	}
	nextJSON, err := json.Marshal(corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}, Status: next})
	if err != nil {
		return nil, false, err
	}
	patch, err = strategicpatch.CreateTwoWayMergePatch(oldJSON, nextJSON, corev1.Pod{})
	if err != nil {
		return nil, false, err
	}
	return patch, bytes.Equal(patch, fmt.Appendf(nil, `{"metadata":{"uid":%q}}`, uid)), nil
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
