package controllers

import (
	"context"
	"reflect"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// Field indexes on WhatsAppConnection.
const (
	indexPhoneNumber = "spec.pairing.phoneNumber"
	indexDeviceJID   = "status.connection.jid"
)

func deviceJID(wac *whatsappv1alpha1.WhatsAppConnection) string {
	if wac.Status.Connection == nil {
		return ""
	}
	return wac.Status.Connection.JID
}

// claim is something two resources may not share: of two claimants the younger halts
// (checkDuplicates), and a change to either wakes the other (mapRivals).
type claim struct {
	index, reason, what string
	value               func(*whatsappv1alpha1.WhatsAppConnection) string
}

var claims = []claim{
	{indexPhoneNumber, whatsappv1alpha1.ReasonDuplicatePhoneNumber, "phone number",
		func(w *whatsappv1alpha1.WhatsAppConnection) string { return w.Spec.Pairing.PhoneNumber }},
	{indexDeviceJID, whatsappv1alpha1.ReasonDuplicateDevice, "device", deviceJID},
}

// SetupWithManager registers the indexes and the watches. Objects are mapped to a resource by
// name, not by owner: an object that blocks a resource (ResourceNotOwned) has no owner
// reference, and its deletion must still wake the resource up.
func (r *WhatsAppConnectionReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	indexer := mgr.GetFieldIndexer()
	indexes := map[string]func(*whatsappv1alpha1.WhatsAppConnection) string{}
	for _, c := range claims {
		indexes[c.index] = c.value
	}
	for field, extract := range indexes {
		if err := indexer.IndexField(ctx, &whatsappv1alpha1.WhatsAppConnection{}, field, func(o client.Object) []string {
			if v := extract(o.(*whatsappv1alpha1.WhatsAppConnection)); v != "" {
				return []string{v}
			}
			return nil
		}); err != nil {
			return err
		}
	}

	if r.StateMetrics != nil {
		if err := r.StateMetrics.Register(newConnectionStateCollector(mgr.GetCache())); err != nil {
			return err
		}
	}

	bySession := handler.EnqueueRequestsFromMapFunc(mapByName(sessionSuffix))
	b := ctrl.NewControllerManagedBy(mgr)
	if r.LostNodeRecovery {
		if err := indexer.IndexField(ctx, &corev1.Pod{}, indexPodNode, func(o client.Object) []string {
			if n := o.(*corev1.Pod).Spec.NodeName; n != "" {
				return []string{n}
			}
			return nil
		}); err != nil {
			return err
		}
		b = b.Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.mapNodePods), builder.WithPredicates(nodeReadinessChanged{}))
	}
	if err := r.observeLeases(ctx, mgr); err != nil {
		return err
	}
	if r.bindingsCached {
		b = b.Watches(&rbacv1.ClusterRoleBinding{}, handler.EnqueueRequestsFromMapFunc(mapBindingOwner), builder.WithPredicates(noBindingCreates))
	}
	return b.
		Named("whatsappconnection").
		For(&whatsappv1alpha1.WhatsAppConnection{}, builder.WithPredicates(worthAPass{})).
		Watches(&whatsappv1alpha1.WhatsAppConnection{}, handler.EnqueueRequestsFromMapFunc(r.mapRivals)).
		Watches(&corev1.Pod{}, bySession, builder.WithPredicates(notOwnCreate{}, podLifecycleChanged{})).
		Watches(&coordinationv1.Lease{}, bySession, builder.WithPredicates(notOwnCreate{}, leaseHolderChanged{})).
		Watches(&corev1.ServiceAccount{}, bySession, builder.WithPredicates(notOwnCreate{}, ownershipChanged{})).
		Watches(&rbacv1.Role{}, bySession, builder.WithPredicates(notOwnCreate{})).
		Watches(&rbacv1.RoleBinding{}, bySession, builder.WithPredicates(notOwnCreate{})).
		Watches(&corev1.Service{}, bySession, builder.WithPredicates(notOwnCreate{})).
		Watches(&networkingv1.NetworkPolicy{}, bySession, builder.WithPredicates(notOwnCreate{})).
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(mapByName(storeSuffix)),
			builder.WithPredicates(notOwnCreate{}, ownershipChanged{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.MaxConcurrentReconciles)}).
		Complete(r)
}

// observeLeases feeds every session Lease change the cache sees to the Lease clock
// (leaseObserver) as it happens, without a pass (renewals do not wake the resource): a record is
// then judged from when its holder wrote it, not from the next pass that happens to look, so a
// session that stops renewing is found a Lease duration after its last renewal.
func (r *WhatsAppConnectionReconciler) observeLeases(ctx context.Context, mgr ctrl.Manager) error {
	inf, err := mgr.GetCache().GetInformer(ctx, &coordinationv1.Lease{})
	if err != nil {
		return err
	}
	observe := func(obj any) {
		if lease, ok := obj.(*coordinationv1.Lease); ok {
			r.leases.observe(lease, r.now())
		}
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { observe(obj) },
		UpdateFunc: func(_, obj any) { observe(obj) },
	})
	return err
}

func mapByName(suffix string) handler.MapFunc {
	return func(_ context.Context, obj client.Object) []reconcile.Request {
		if key, ok := connectionFor(obj.GetNamespace(), obj.GetName(), suffix); ok {
			return []reconcile.Request{{NamespacedName: key}}
		}
		return nil
	}
}

// mapRivals wakes the resources that share a phone number or device with the changed one, so
// that the younger resumes when the older goes away.
func (r *WhatsAppConnectionReconciler) mapRivals(ctx context.Context, obj client.Object) []reconcile.Request {
	wac := obj.(*whatsappv1alpha1.WhatsAppConnection)
	var reqs []reconcile.Request
	for _, c := range claims {
		value := c.value(wac)
		if value == "" {
			continue
		}
		rivals, err := r.claimants(ctx, c, value, wac.Namespace)
		if err != nil {
			continue
		}
		for i := range rivals {
			if rivals[i].UID != wac.UID {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rivals[i])})
			}
		}
	}
	return reqs
}

// worthAPass lets through the changes to a WhatsAppConnection the controller acts on: spec,
// annotations, deletion and what the session reports. The controller's own status
// writes are not among them, so writing status does not cause another pass.
type worthAPass struct {
	predicate.Funcs
}

func (worthAPass) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*whatsappv1alpha1.WhatsAppConnection)
	n, ok2 := e.ObjectNew.(*whatsappv1alpha1.WhatsAppConnection)
	if !ok1 || !ok2 {
		return true
	}
	// Not finalizers: the controller adds its own in the pass that runs, and removes it last.
	return o.Generation != n.Generation ||
		!reflect.DeepEqual(o.Annotations, n.Annotations) ||
		!o.DeletionTimestamp.Equal(n.DeletionTimestamp) ||
		!reflect.DeepEqual(o.Status.Connection, n.Status.Connection) ||
		givenUpChanged(o, n)
}

// leaseHolderChanged ignores Lease renewals, which every session makes every few seconds: only a
// change of holder (or of ownership) is something the controller acts on.
type leaseHolderChanged struct {
	predicate.Funcs
}

func (leaseHolderChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*coordinationv1.Lease)
	n, ok2 := e.ObjectNew.(*coordinationv1.Lease)
	if !ok1 || !ok2 {
		return true
	}
	return !reflect.DeepEqual(o.Spec.HolderIdentity, n.Spec.HolderIdentity) ||
		!reflect.DeepEqual(o.OwnerReferences, n.OwnerReferences)
}

// podLifecycleChanged ignores pod updates the controller does not act on (readiness flips,
// container restart counts): phase, the session container's end, deletion, ownership, the spec
// hash and the session container's waiting reason (a missing store Secret) are what matter.
type podLifecycleChanged struct {
	predicate.Funcs
}

func (podLifecycleChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*corev1.Pod)
	n, ok2 := e.ObjectNew.(*corev1.Pod)
	if !ok1 || !ok2 {
		return true
	}
	return o.Status.Phase != n.Status.Phase || sessionExited(o) != sessionExited(n) ||
		!o.DeletionTimestamp.Equal(n.DeletionTimestamp) ||
		!reflect.DeepEqual(o.OwnerReferences, n.OwnerReferences) ||
		o.Annotations[podSpecHashAnnotation] != n.Annotations[podSpecHashAnnotation] ||
		waitingOn(o) != waitingOn(n)
}

// waitingOn is why the session container waits to start, with the kubelet's message: a
// kubelet rewrites the same report on every retry, and only a new one is worth a pass.
func waitingOn(pod *corev1.Pod) string {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == sessionContainer && cs.State.Waiting != nil {
			return cs.State.Waiting.Reason + "\x00" + cs.State.Waiting.Message
		}
	}
	return ""
}

// notOwnCreate drops the create event of an object a WhatsAppConnection controls: the controller
// made it in the pass that is running, so the event would only cause a pass with nothing to do.
// Creates of foreign objects (a ResourceNotOwned blocker) still pass.
type notOwnCreate struct {
	predicate.Funcs
}

func (notOwnCreate) Create(e event.CreateEvent) bool {
	ref := metav1.GetControllerOf(e.Object)
	return ref == nil || ref.Kind != "WhatsAppConnection" || !strings.HasPrefix(ref.APIVersion, whatsappv1alpha1.GroupVersion.Group+"/")
}

// ownershipChanged lets through updates that change whether the controller may act on the
// object (its owner or its deletion), not status churn such as a claim being bound.
type ownershipChanged struct {
	predicate.Funcs
}

func (ownershipChanged) Update(e event.UpdateEvent) bool {
	return !reflect.DeepEqual(e.ObjectOld.GetOwnerReferences(), e.ObjectNew.GetOwnerReferences()) ||
		!e.ObjectOld.GetDeletionTimestamp().Equal(e.ObjectNew.GetDeletionTimestamp())
}
