package controllers

import (
	"context"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
)

// ensureStore creates the PersistentVolumeClaim of an sqlite store. It outlives session pods,
// so a restart never means pairing again.
func (r *WhatsAppConnectionReconciler) ensureStore(ctx context.Context, p *pass) (*ctrl.Result, error) {
	sqlite := p.wac.Spec.Store.SQLite
	if sqlite == nil {
		return nil, nil
	}
	size := sqlite.Size
	if size.IsZero() {
		size.Set(1 << 30)
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: storeName(p.wac), Namespace: p.wac.Namespace, Labels: commonLabels(p.wac)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: sqlite.StorageClassName,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
	return r.createIfMissing(ctx, p.wac, pvc, &corev1.PersistentVolumeClaim{})
}

// ensureLease creates the session's Lease with no holder. The controller creates it so that
// the session needs no right to create Leases; the session only takes and renews it.
func (r *WhatsAppConnectionReconciler) ensureLease(ctx context.Context, p *pass) (*ctrl.Result, error) {
	if p.lease != nil {
		return nil, nil
	}
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: sessionName(p.wac), Namespace: p.wac.Namespace, Labels: commonLabels(p.wac)},
		Spec:       coordinationv1.LeaseSpec{LeaseDurationSeconds: ptr.To(int32(r.Session.LeaseDuration.Seconds()))},
	}
	current := &coordinationv1.Lease{}
	res, err := r.createIfMissing(ctx, p.wac, lease, current)
	if current.Name != "" {
		p.lease = current
	}
	return res, err
}

// suspendIfAsked removes the session pod while spec.suspend is true. The store, the Lease and
// the RBAC objects stay, so resuming needs no pairing.
func (r *WhatsAppConnectionReconciler) suspendIfAsked(ctx context.Context, p *pass) (*ctrl.Result, error) {
	if !p.wac.Spec.Suspend {
		return nil, nil
	}
	p.suspended = true
	if p.pod != nil && p.pod.DeletionTimestamp.IsZero() {
		res, err := r.deletePodAndWait(ctx, p, "Suspended", "spec.suspend is true; removing the session pod")
		p.waiting = nil
		return res, err
	}
	return stop()
}
