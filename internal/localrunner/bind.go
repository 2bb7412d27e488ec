package localrunner

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// bind assigns an unscheduled pod to the runner's Node, as the scheduler would, through the
// binding subresource: the only way the API server lets a pod's nodeName be set.
func (r *Runner) bind(ctx context.Context, pod *corev1.Pod) error {
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: r.opts.NodeName},
	}
	err := r.cs.CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // bound meanwhile, or gone: either way nothing is left to do
	}
	if err == nil {
		r.log.V(1).Info("bound pod", "pod", pod.Namespace+"/"+pod.Name, "node", r.opts.NodeName)
	}
	return err
}

// wantsBinding: the runner is the only scheduler here, but only for the pods it was told about.
func (r *Runner) wantsBinding(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil && r.opts.Selector.Matches(labels.Set(pod.Labels))
}
