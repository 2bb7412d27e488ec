package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	coordinationv1 "k8s.io/api/coordination/v1"
)

// indexPodNode indexes the cached session pods by the node they run on.
const indexPodNode = "spec.nodeName"

// checkNode replaces a session pod stranded on a lost node. Such a pod stays Terminating for
// ever: nobody is left to confirm its end. Once the node is not Ready and the pod's Lease has
// been seen unchanged for a whole Lease duration on this controller's clock, its session has
// dropped WhatsApp by its own renew-deadline watchdog, even if it still runs: the controller
// releases the Lease, force-deletes the pod (grace period 0) and the next pass starts the
// successor. Off with --lost-node-recovery=false.
func (r *WhatsAppConnectionReconciler) checkNode(ctx context.Context, p *pass) (*ctrl.Result, error) {
	pod := p.pod
	if !r.LostNodeRecovery || pod.Spec.NodeName == "" || p.lease == nil {
		return nil, nil
	}
	node := &corev1.Node{}
	err := r.Get(ctx, client.ObjectKey{Name: pod.Spec.NodeName}, node)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	if err == nil && nodeReady(node) {
		return nil, nil
	}
	if g := pod.DeletionGracePeriodSeconds; g != nil && *g == 0 {
		// Already force-deleted; until it is gone, say why.
		p.waiting = &verdict{whatsappv1alpha1.ReasonNodeLost, nodeLostMessage(p, pod, r.Session.LeaseDuration)}
		return nil, nil
	}
	stale, wait, err := r.leaseExpiredLive(ctx, p.lease)
	if err != nil {
		return nil, err
	}
	if stale == nil {
		// The session may still renew (the node lost only its kubelet): look again when the
		// Lease would have expired.
		return &ctrl.Result{RequeueAfter: wait}, nil
	}
	released := true
	if err := r.leaseEdit(ctx, p, func(l *coordinationv1.Lease) bool {
		if !equality.Semantic.DeepEqual(l.Spec, stale.Spec) {
			released = false // renewed after all
			return false
		}
		return releaseFrom(l, holderOf(l), r.now())
	}); err != nil {
		return nil, err
	}
	if !released {
		return stopFor(r.Session.LeaseDuration)
	}
	if err := r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}, client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
		return nil, err
	}
	msg := nodeLostMessage(p, pod, time.Duration(*stale.Spec.LeaseDurationSeconds)*time.Second)
	r.warn(p.wac, whatsappv1alpha1.ReasonNodeLost, "Replace", msg)
	p.pod = nil
	p.waiting = &verdict{whatsappv1alpha1.ReasonNodeLost, msg}
	return stop()
}

// nodeLostMessage says what happened and, for the SQLite store, what the cluster must do about
// the ReadWriteOnce volume.
func nodeLostMessage(p *pass, pod *corev1.Pod, lease time.Duration) string {
	msg := fmt.Sprintf("node %s is not Ready and the session's Lease was not renewed for %s: session pod %s was force-deleted and is replaced",
		pod.Spec.NodeName, lease, pod.Name)
	if p.wac.Spec.Store.Postgres == nil {
		msg += fmt.Sprintf(". The store's ReadWriteOnce volume may stay attached to %s, which keeps the new pod from starting "+
			"until the node comes back or is given the node.kubernetes.io/out-of-service taint", pod.Spec.NodeName)
	}
	return msg
}

func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// mapNodePods wakes the resources whose session pods run on a node.
func (r *WhatsAppConnectionReconciler) mapNodePods(ctx context.Context, obj client.Object) []reconcile.Request {
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.MatchingFields{indexPodNode: obj.GetName()}); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range pods.Items {
		if name := pods.Items[i].Labels[whatsappv1alpha1.ConnectionLabel]; name != "" {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: pods.Items[i].Namespace, Name: name}})
		}
	}
	return reqs
}

// nodeReadinessChanged passes a node's changes of readiness, not its heartbeats.
type nodeReadinessChanged struct {
	predicate.Funcs
}

func (nodeReadinessChanged) Create(event.CreateEvent) bool { return false }

func (nodeReadinessChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*corev1.Node)
	n, ok2 := e.ObjectNew.(*corev1.Node)
	return !ok1 || !ok2 || nodeReady(o) != nodeReady(n)
}
