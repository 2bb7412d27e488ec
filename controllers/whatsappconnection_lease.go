package controllers

import (
	"context"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// Lease annotations the controller keeps for the crash backoff. They live on the Lease because
// it outlives every session pod, and the session preserves them (it updates the object it read).
const (
	// quickExitsAnnotation counts the consecutive session pods that exited soon after they
	// started; the crash backoff doubles with each.
	quickExitsAnnotation = "whatsapp.waoperator.io/quick-exits"
	// lastExitAnnotation is the UID of the last pod counted, so that a pod is counted once.
	lastExitAnnotation = "whatsapp.waoperator.io/last-exited-pod"
)

// leaseObserver is client-go's rule for judging another machine's Lease without reading its
// clock: remember the record seen and the local time it was first seen; the holder is presumed
// gone once the same record has been seen for its whole leaseDurationSeconds. renewTime, written
// by another node's clock, is never compared with this one.
//
// Observations are in memory: a restarted manager starts counting afresh, which only delays.
type leaseObserver struct {
	mu   sync.Mutex
	seen map[types.NamespacedName]leaseObservation
}

type leaseObservation struct {
	spec coordinationv1.LeaseSpec
	at   time.Time
}

// observe records lease as seen at now and returns for how long its record has been seen
// unchanged.
func (o *leaseObserver) observe(lease *coordinationv1.Lease, now time.Time) time.Duration {
	key := types.NamespacedName{Namespace: lease.Namespace, Name: lease.Name}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil {
		o.seen = map[types.NamespacedName]leaseObservation{}
	}
	prev, ok := o.seen[key]
	if !ok || !equality.Semantic.DeepEqual(prev.spec, lease.Spec) {
		o.seen[key] = leaseObservation{spec: *lease.Spec.DeepCopy(), at: now}
		return 0
	}
	return now.Sub(prev.at)
}

func (o *leaseObserver) forget(key types.NamespacedName) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.seen, key)
}

func holderOf(lease *coordinationv1.Lease) string {
	if lease == nil {
		return ""
	}
	return ptr.Deref(lease.Spec.HolderIdentity, "")
}

// leaseExpiresIn is how long until the Lease's holder is presumed gone by this controller's
// clock: its record unchanged for its duration since the controller first saw it. Zero or less
// when that time has passed or nobody holds it.
func (r *WhatsAppConnectionReconciler) leaseExpiresIn(lease *coordinationv1.Lease) time.Duration {
	if holderOf(lease) == "" {
		return 0
	}
	d := time.Duration(ptr.Deref(lease.Spec.LeaseDurationSeconds, 0)) * time.Second
	return d - r.leases.observe(lease, r.now())
}

// leaseExpiredLive confirms an expiry judged from the cache with a read from the API server: a
// watch that fell behind (an API server stall) must not make a live holder look dead. It
// returns the fresh Lease when it has expired, nil otherwise.
func (r *WhatsAppConnectionReconciler) leaseExpiredLive(ctx context.Context, lease *coordinationv1.Lease) (*coordinationv1.Lease, time.Duration, error) {
	if wait := r.leaseExpiresIn(lease); wait > 0 {
		return nil, wait, nil
	}
	fresh := &coordinationv1.Lease{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(lease), fresh); err != nil {
		return nil, 0, err
	}
	if wait := r.leaseExpiresIn(fresh); wait > 0 {
		return nil, wait, nil
	}
	return fresh, 0, nil
}

// sessionExited tells whether the pod's session process is gone by the kubelet's own report:
// the pod is in a terminal phase, or its session container has terminated (restartPolicy is
// Never, so a terminated container stays terminated).
func sessionExited(pod *corev1.Pod) bool {
	if pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		return true
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == sessionContainer && cs.State.Terminated != nil {
			return true
		}
	}
	return false
}

// leaseEdit changes the session Lease: it reads it from the API server, lets change decide
// (false: nothing to write), and updates it over the resourceVersion it read, so that a write
// of the session in between (a renewal) makes it read and decide again rather than overwrite.
func (r *WhatsAppConnectionReconciler) leaseEdit(ctx context.Context, p *pass, change func(*coordinationv1.Lease) bool) error {
	if p.lease == nil {
		return nil
	}
	for attempt := 0; ; attempt++ {
		lease := &coordinationv1.Lease{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(p.lease), lease); err != nil {
			return client.IgnoreNotFound(err)
		}
		if !change(lease) {
			p.lease = lease
			return nil
		}
		err := r.Update(ctx, lease)
		if err == nil {
			p.lease = lease
			return nil
		}
		if !apierrors.IsConflict(err) || attempt == 3 {
			return err
		}
	}
}

// releaseFrom empties the Lease's holder when, and only when, it still names holder: that
// session is known to be gone (its container terminated, or its record unchanged for a whole
// Lease duration, past its renew deadline), so its successor need not wait for it.
func releaseFrom(lease *coordinationv1.Lease, holder string, now time.Time) bool {
	if holder == "" || holderOf(lease) != holder {
		return false
	}
	at := metav1.NewMicroTime(now)
	lease.Spec.HolderIdentity = ptr.To("")
	lease.Spec.LeaseDurationSeconds = ptr.To[int32](1)
	lease.Spec.AcquireTime, lease.Spec.RenewTime = &at, &at
	return true
}

// recordExit handles a session pod the kubelet reports exited, in one Lease write: the Lease is
// released if the dead pod still holds it, and the pod is counted in the crash backoff (once).
// It returns the number of consecutive quick exits, this one included (0 after a healthy run).
func (r *WhatsAppConnectionReconciler) recordExit(ctx context.Context, p *pass, pod *corev1.Pod) (int, error) {
	quick := ranBriefly(pod)
	exits := 1
	if !quick {
		exits = 0
	}
	err := r.leaseEdit(ctx, p, func(lease *coordinationv1.Lease) bool {
		changed := releaseFrom(lease, sessionenv.LeaseIdentity(pod.Name, string(pod.UID)), r.now())
		prev, _ := strconv.Atoi(lease.Annotations[quickExitsAnnotation])
		if lease.Annotations[lastExitAnnotation] == string(pod.UID) {
			exits = prev // counted in an earlier pass
			return changed
		}
		if quick {
			exits = prev + 1
		}
		if lease.Annotations == nil {
			lease.Annotations = map[string]string{}
		}
		lease.Annotations[quickExitsAnnotation] = strconv.Itoa(exits)
		lease.Annotations[lastExitAnnotation] = string(pod.UID)
		return true
	})
	return exits, err
}

// ranBriefly: the pod's session exited less than minHealthyRun after it started.
func ranBriefly(pod *corev1.Pod) bool {
	started, finished := podRun(pod)
	return finished.Sub(started) < minHealthyRun
}

func podRun(pod *corev1.Pod) (started, finished time.Time) {
	started = pod.CreationTimestamp.Time
	if pod.Status.StartTime != nil {
		started = pod.Status.StartTime.Time
	}
	finished = started // a kubelet always records FinishedAt; without it, count from the start
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil && !t.FinishedAt.IsZero() {
			finished = t.FinishedAt.Time
		}
	}
	return started, finished
}

// crashBackoff is how long to leave a pod that exited soon after it started before replacing
// it: CrashBackoff after the first such exit, doubling with each consecutive one up to
// CrashBackoffMax, counted from the exit. A session that cannot start is retried ever more
// rarely, not in a loop; one that ran well is replaced at once.
//
// A session that logged in to WhatsApp before it died (killed, OOM, a node's reboot) had nothing
// wrong with its start: its first connectedFreeExits quick exits in a row are replaced at once,
// so a crash costs a pod start, not a backoff. Only a session that keeps dying after it logs in
// (a message it cannot survive, say) backs off after them, so no loop logs in again and again.
func (r *WhatsAppConnectionReconciler) crashBackoff(pod *corev1.Pod, exits int, connected bool) time.Duration {
	if connected {
		exits -= connectedFreeExits
	}
	if exits <= 0 {
		return 0
	}
	wait := r.CrashBackoff
	for i := 1; i < exits && wait < r.crashBackoffMax(); i++ {
		wait *= 2
	}
	wait = min(wait, r.crashBackoffMax())
	_, finished := podRun(pod)
	return finished.Add(wait).Sub(r.now())
}

// connectedFreeExits is how many quick exits in a row of sessions that had logged in are
// replaced without a backoff.
const connectedFreeExits = 2

// loggedIn: the pod's session logged in to WhatsApp, as its last status says (the status names
// the pod incarnation that wrote it, and when it last logged in).
func loggedIn(wac *whatsappv1alpha1.WhatsAppConnection, pod *corev1.Pod) bool {
	c := wac.Status.Connection
	if c == nil || c.Holder == nil || c.LastConnectedAt == nil {
		return false
	}
	if c.Holder.Pod != pod.Name || c.Holder.UID != string(pod.UID) {
		return false
	}
	started, _ := podRun(pod)
	return !c.LastConnectedAt.Time.Before(started.Truncate(time.Second))
}

func (r *WhatsAppConnectionReconciler) crashBackoffMax() time.Duration {
	if r.CrashBackoffMax < r.CrashBackoff {
		return r.CrashBackoff
	}
	return r.CrashBackoffMax
}
