package controllers

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// indexPodNode indexes the cached session pods by the node they run on.
const indexPodNode = "spec.nodeName"

// replaceUnresponsive replaces a session pod whose session has stopped renewing its Lease
// without exiting, once that Lease has been seen unchanged for a whole Lease duration on this
// controller's clock. By then that session has dropped WhatsApp by its own renew-deadline
// watchdog (RenewDeadline < LeaseDuration), even if its process still runs: the controller
// releases the Lease (over the record it judged, so a late renewal wins) and deletes the pod; the
// successor starts once it is gone. A session past its renew deadline never writes its Lease
// again (the session's lease.Fence.Lapsed), so a frozen process that wakes cannot take the released
// Lease back. A live session that cannot renew exits at its renew deadline and is replaced on
// the kubelet's report long before this; what is left is a session that cannot run at all:
//
//   - on a lost node (not Ready) the pod would stay Terminating for ever, since nobody is left
//     to confirm its end: it is force-deleted (off with --lost-node-recovery=false, which also
//     spares the Node reads);
//   - on a Ready node its process is frozen (stopped, starved, stuck in the kernel): a normal
//     deletion would wait for its grace period, a liveness probe for its failures; it is deleted
//     with a one-second grace period. Only the pod that holds the Lease is judged there; a pod
//     waiting to acquire is not stuck.
func (r *WhatsAppConnectionReconciler) replaceUnresponsive(ctx context.Context, p *pass) (*ctrl.Result, error) {
	pod := p.pod
	if p.lease == nil {
		return nil, nil
	}
	nodeLost, err := r.nodeLost(ctx, pod)
	if err != nil {
		return nil, err
	}
	holds := holderOf(p.lease) == sessionenv.LeaseIdentity(pod.Name, string(pod.UID))
	if !nodeLost && (!holds || !pod.DeletionTimestamp.IsZero()) {
		return nil, nil
	}
	if g := pod.DeletionGracePeriodSeconds; nodeLost && g != nil && *g == 0 {
		// Already force-deleted; until it is gone, say why.
		p.waiting = &verdict{whatsappv1alpha1.ReasonNodeLost, nodeLostMessage(p, pod, r.Session.LeaseDuration)}
		return nil, nil
	}
	stale, wait, err := r.leaseExpiredLive(ctx, p.lease)
	if err != nil {
		return nil, err
	}
	if stale == nil {
		// Look again when the Lease would have stood still for its duration (renewals seen in
		// between move that time on: see observeLeases). The pass goes on: the steps after the
		// pod (the send API's Service and binding) must not wait for a live session to stop.
		p.recheckAfter = wait
		return nil, nil
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
	lease := time.Duration(*stale.Spec.LeaseDurationSeconds) * time.Second
	if !nodeLost {
		// The node's kubelet works: it kills the frozen process (SIGKILL after the shortest
		// grace; a stopped process cannot act on SIGTERM) and confirms, and the successor starts
		// only then. A force deletion would start it while the old process may still hold its
		// WhatsApp socket, which WhatsApp would then replace.
		if err := r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}, client.GracePeriodSeconds(1)); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return nil, err
		}
		msg := fmt.Sprintf("session pod %s stopped renewing its Lease for %s without exiting: it is deleted and replaced once its node has stopped it", pod.Name, lease)
		r.warn(p.wac, whatsappv1alpha1.ReasonSessionUnresponsive, "Replace", msg)
		p.waiting = &verdict{whatsappv1alpha1.ReasonSessionUnresponsive, msg}
		return stop()
	}
	if err := r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}, client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
		return nil, err
	}
	msg := nodeLostMessage(p, pod, lease)
	r.warn(p.wac, whatsappv1alpha1.ReasonNodeLost, "Replace", msg)
	p.pod = nil
	p.waiting = &verdict{whatsappv1alpha1.ReasonNodeLost, msg}
	return stop()
}

// nodeLost: the pod is bound to a node that is gone or not Ready. False when lost-node recovery
// is off.
func (r *WhatsAppConnectionReconciler) nodeLost(ctx context.Context, pod *corev1.Pod) (bool, error) {
	if !r.LostNodeRecovery || pod.Spec.NodeName == "" {
		return false, nil
	}
	node := &corev1.Node{}
	err := r.Get(ctx, client.ObjectKey{Name: pod.Spec.NodeName}, node)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !nodeReady(node), nil
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
		// By name, as every watch maps: the cache keeps no labels (whatsappconnection_cache.go).
		if key, ok := connectionFor(pods.Items[i].Namespace, pods.Items[i].Name, sessionSuffix); ok {
			reqs = append(reqs, reconcile.Request{NamespacedName: key})
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
