package controllers

import (
	"context"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// The manager caches about nine objects per WhatsAppConnection, and with 1,000 of them their
// metadata was most of its heap: the four labels alone (a map each) were a sixth of it. So the
// cache keeps of each object it holds for the controller only what the controller reads back:
//
//   - of every object the controller made: name, namespace, UID, resourceVersion, creation and
//     deletion time and owner references (ownership, deletion with a UID precondition), never
//     labels (the cache selects them by label on the API server, and an object that loses its
//     label leaves the cache), finalizers or managed fields;
//   - of annotations only the one read: the session pod's spec hash, the session
//     ClusterRoleBinding's owner;
//   - of each kind, the fields a pass compares with what it wants, and no others:
//     Pod: status and spec.nodeName; Lease: its spec (holder, durations: the Lease clock
//     compares all of it); Role: rules; RoleBinding and ClusterRoleBinding: roleRef and subjects;
//     NetworkPolicy: its spec; Service: spec.selector and spec.ports; ServiceAccount and
//     PersistentVolumeClaim: nothing beyond the metadata (they are only created and owned).
//
// A cached copy is therefore never written back: a repair reads the object from the API server
// and changes only what drifted (repairOwned), so nothing the cache leaves out is lost.
// WhatsAppConnections keep everything but managed fields: the controller updates them (its
// finalizer) from the cache.

// ownerAPIVersion and ownerKind are the owner reference of every object the controller made;
// cached copies share these strings instead of one decoded copy each.
var (
	ownerAPIVersion = whatsappv1alpha1.GroupVersion.String()
	ownerKind       = "WhatsAppConnection"
)

// trimOwnedMeta leaves the metadata the controller reads of an object it made; of its
// annotations only keep, if not empty (others, such as a CNI's or a service mesh's on pods, can
// be larger than the rest of the object).
func trimOwnedMeta(m *metav1.ObjectMeta, keep string) {
	m.Labels, m.Finalizers, m.ManagedFields, m.GenerateName = nil, nil, nil, ""
	switch v, ok := m.Annotations[keep]; {
	case !ok || keep == "":
		m.Annotations = nil
	case len(m.Annotations) > 1:
		m.Annotations = map[string]string{keep: v}
	}
	for i := range m.OwnerReferences {
		ref := &m.OwnerReferences[i]
		if ref.APIVersion == ownerAPIVersion && ref.Kind == ownerKind {
			ref.APIVersion, ref.Kind = ownerAPIVersion, ownerKind
		}
	}
}

// trimOwned is the cache transform of a kind the controller makes: trimOwnedMeta, then trim of
// the kind's own fields. Anything that is not a T (a tombstone) passes unchanged.
func trimOwned[T client.Object](keepAnnotation string, trim func(T)) toolscache.TransformFunc {
	return func(in any) (any, error) {
		obj, ok := in.(T)
		if !ok {
			return in, nil
		}
		if m, ok := any(obj).(metav1.ObjectMetaAccessor); ok {
			trimOwnedMeta(m.GetObjectMeta().(*metav1.ObjectMeta), keepAnnotation)
		}
		if trim != nil {
			trim(obj)
		}
		return obj, nil
	}
}

// ownedTransforms are the cache transforms of the kinds the controller makes, namespaced ones.
func ownedTransforms() map[client.Object]toolscache.TransformFunc {
	return map[client.Object]toolscache.TransformFunc{
		&corev1.Pod{}: trimOwned(podSpecHashAnnotation, func(pod *corev1.Pod) {
			// The spec is compared through its hash annotation, never read back.
			pod.Spec = corev1.PodSpec{NodeName: pod.Spec.NodeName}
		}),
		&coordinationv1.Lease{}:  trimOwned[*coordinationv1.Lease]("", nil),
		&corev1.ServiceAccount{}: trimOwned("", func(sa *corev1.ServiceAccount) { *sa = corev1.ServiceAccount{ObjectMeta: sa.ObjectMeta} }),
		&corev1.PersistentVolumeClaim{}: trimOwned("", func(pvc *corev1.PersistentVolumeClaim) {
			*pvc = corev1.PersistentVolumeClaim{ObjectMeta: pvc.ObjectMeta}
		}),
		&rbacv1.Role{}:        trimOwned[*rbacv1.Role]("", nil),
		&rbacv1.RoleBinding{}: trimOwned[*rbacv1.RoleBinding]("", nil),
		&corev1.Service{}: trimOwned("", func(svc *corev1.Service) {
			svc.Spec = corev1.ServiceSpec{Selector: svc.Spec.Selector, Ports: svc.Spec.Ports}
			svc.Status = corev1.ServiceStatus{}
		}),
		&networkingv1.NetworkPolicy{}: trimOwned[*networkingv1.NetworkPolicy]("", nil),
	}
}

// trimOwnedBinding is the cache transform of the session ClusterRoleBindings (cacheOwnBindings).
var trimOwnedBinding = trimOwned[*rbacv1.ClusterRoleBinding](ownerAnnotation, nil)

// repairOwned puts back what drifted on an object the controller made. cached is the cache's
// copy (no name: the object is missing, which createIfMissing handles); drifted says whether an
// object differs from what the controller wants and put makes it so. A drift in the cached copy
// is judged again and put back over the object as the API server holds it (read into fresh, an
// empty object of the kind), never over the cached copy: that lacks what the cache leaves out
// (labels among them, and without its label the object would leave the cache). An object that
// is no longer controlled by wac is left to checkOwnership; an update that races another write
// fails on its resourceVersion and the pass is retried.
func repairOwned[T client.Object](ctx context.Context, r *WhatsAppConnectionReconciler, wac *whatsappv1alpha1.WhatsAppConnection,
	cached, fresh T, drifted func(T) bool, put func(T)) error {
	if cached.GetName() == "" || !drifted(cached) {
		return nil
	}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cached), fresh); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(fresh, wac) || !drifted(fresh) {
		return nil
	}
	put(fresh)
	return r.Update(ctx, fresh)
}
