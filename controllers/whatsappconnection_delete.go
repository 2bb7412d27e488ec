package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/conditions"
)

// reconcileDelete lets the session log out (when logoutOnDelete asks and the device is paired),
// bounded by LogoutTimeout, then removes the pod, waits for it to be gone, removes the other
// objects and releases the finalizer. It never waits past its bound.
func (r *WhatsAppConnectionReconciler) reconcileDelete(ctx context.Context, wac *whatsappv1alpha1.WhatsAppConnection) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(wac, finalizer) {
		return ctrl.Result{}, nil
	}
	p := newPass(wac)
	pod, err := r.currentPod(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	p.pod = pod
	deadline := wac.DeletionTimestamp.Add(r.LogoutTimeout)
	remaining := deadline.Sub(r.now())

	if r.waitsForLogout(p) {
		if remaining > 0 {
			conditions.Set(&p.status.Conditions, wac.Generation, whatsappv1alpha1.ConditionReady, metav1.ConditionFalse,
				whatsappv1alpha1.ReasonDeleting, fmt.Sprintf("waiting up to %s for the session to log the device out", remaining.Round(time.Second)))
			// The session's LoggedOut report is a watch event; the requeue is only the bound.
			return ctrl.Result{RequeueAfter: remaining}, r.applyStatus(ctx, p)
		}
		r.warn(wac, "LogoutTimedOut", "Delete", fmt.Sprintf(
			"the session did not report LoggedOut within %s; removing it anyway. The device may still be listed on the phone: remove it there", r.LogoutTimeout))
	} else if why := cannotLogOut(p); why != "" {
		r.warn(wac, "LogoutNotPossible", "Delete",
			"logoutOnDelete is true but the device was not logged out: "+why+". It stays listed on the phone under Linked devices: remove it there")
	}

	if pod != nil {
		if pod.DeletionTimestamp.IsZero() {
			if err := r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
				return ctrl.Result{}, err
			}
		}
		// The session must be gone before its RBAC is, so that its last status write lands; but
		// a pod stuck terminating (a lost node) does not hold the resource forever.
		if graceLeft := remaining + podGoneGrace; graceLeft > 0 {
			return ctrl.Result{RequeueAfter: graceLeft}, nil
		}
		r.warn(wac, "SessionPodStuck", "Delete", fmt.Sprintf("session pod %s is still terminating; removing the resource anyway", pod.Name))
	}

	for _, obj := range ownedObjects(wac) {
		if err := r.deleteIfControlled(ctx, wac, obj); err != nil {
			return ctrl.Result{}, err
		}
	}

	if err := r.deleteAuthDelegation(ctx, wac); err != nil {
		return ctrl.Result{}, err
	}
	r.leases.forget(client.ObjectKey{Namespace: wac.Namespace, Name: sessionName(wac)})
	controllerutil.RemoveFinalizer(wac, finalizer)
	// Another pass (or manager) may have released it already.
	if err := r.Update(ctx, wac); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	}
	forgetMetrics(wac.Namespace, wac.Name)
	return ctrl.Result{}, nil
}

// cannotLogOut says why a resource being deleted with logoutOnDelete, whose last session
// reported a linked device, has no session that could log it out; "" when it has one (or
// nothing to log out).
func cannotLogOut(p *pass) string {
	if p.wac.Spec.LogoutOnDelete != nil && !*p.wac.Spec.LogoutOnDelete {
		return ""
	}
	last := p.wac.Status.Connection
	if p.pod != nil || last == nil || last.JID == "" || last.State == whatsappv1alpha1.SessionLoggedOut {
		return ""
	}
	if p.wac.Spec.Suspend {
		return "spec.suspend is true, so no session runs (set suspend: false and let it connect before deleting, to log out)"
	}
	return "no session runs (the resource was halted or its session had stopped)"
}

// podGoneGrace is how long past the logout bound deletion waits for the pod to terminate.
const podGoneGrace = 30 * time.Second

// waitsForLogout: logoutOnDelete is on, the current session reports a paired device, and it has
// not reported LoggedOut yet.
func (r *WhatsAppConnectionReconciler) waitsForLogout(p *pass) bool {
	if p.wac.Spec.LogoutOnDelete != nil && !*p.wac.Spec.LogoutOnDelete {
		return false
	}
	conn := p.trustedConnection()
	return conn != nil && conn.JID != "" && conn.State != whatsappv1alpha1.SessionLoggedOut
}

// deleteIfControlled deletes the named object only if this resource controls it.
func (r *WhatsAppConnectionReconciler) deleteIfControlled(ctx context.Context, wac *whatsappv1alpha1.WhatsAppConnection, obj client.Object) error {
	err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !metav1.IsControlledBy(obj, wac) {
		return nil
	}
	uid := obj.GetUID()
	return client.IgnoreNotFound(r.Delete(ctx, obj, client.Preconditions{UID: &uid}))
}
