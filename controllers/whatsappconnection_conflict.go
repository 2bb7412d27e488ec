package controllers

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/conditions"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// recordedHalt is the halt the controller itself recorded in the stored status, if any:
// Conflict=True, or Degraded=True because the session ran out of reconnect attempts. The other
// Degraded reasons repeat the session's current report (summarize), and the session holds them.
func recordedHalt(st *whatsappv1alpha1.WhatsAppConnectionStatus) *metav1.Condition {
	if c := st.Halt(); c != nil && (c.Type == whatsappv1alpha1.ConditionConflict || c.Reason == whatsappv1alpha1.ReasonReconnectLimit) {
		return c
	}
	return nil
}

// resumeIfRequested lifts a halt when a person asked: a new reconnect-requested-at token, or a
// new spec generation. The token is echoed in status whether or not anything was halted.
func (r *WhatsAppConnectionReconciler) resumeIfRequested(ctx context.Context, p *pass) (*ctrl.Result, error) {
	token := whatsappv1alpha1.RequestToken(p.wac, whatsappv1alpha1.ReconnectRequestedAtAnnotation)
	if token == "" && p.wac.Annotations[whatsappv1alpha1.ReconnectRequestedAtAnnotation] != "" {
		// Echoing it would make every status write fail; the admission policy refuses it.
		r.warn(p.wac, "RequestIgnored", "Resume", fmt.Sprintf("the %s annotation is longer than %d characters and is ignored",
			whatsappv1alpha1.ReconnectRequestedAtAnnotation, whatsappv1alpha1.MaxRequestTokenLength))
	}
	newToken := token != "" && token != p.status.LastHandledReconnectAt
	if newToken {
		p.status.LastHandledReconnectAt = token
	}
	halt := recordedHalt(&p.status)
	if halt == nil || (!newToken && halt.ObservedGeneration == p.wac.Generation) {
		return nil, nil
	}
	why := "the spec changed"
	if newToken {
		why = fmt.Sprintf("%s=%s", whatsappv1alpha1.ReconnectRequestedAtAnnotation, token)
	}
	r.normal(p.wac, whatsappv1alpha1.ReasonResumed, "Resume", fmt.Sprintf("lifting %s halt: %s", halt.Reason, why))
	// Forget the halt: the checks below decide afresh, and summarize writes the result.
	for _, typ := range []string{whatsappv1alpha1.ConditionConflict, whatsappv1alpha1.ConditionDegraded} {
		conditions.Set(&p.status.Conditions, p.wac.Generation, typ, metav1.ConditionFalse, whatsappv1alpha1.ReasonResumed, why)
	}
	if whatsappv1alpha1.HaltLiftsByItself(halt.Reason) {
		return nil, nil
	}
	// A session that stopped on WhatsApp's word is not restarted in place: a fresh pod makes the
	// one new attempt, and its report is the only one trusted from then on.
	if p.pod != nil && p.pod.DeletionTimestamp.IsZero() {
		return r.deletePodAndWait(ctx, p, "SessionRestarted", "restarting the session after "+why)
	}
	return nil, nil
}

// stayHalted ends the pass while a halt that needs a person is recorded: no requeue, no pod.
func (r *WhatsAppConnectionReconciler) stayHalted(_ context.Context, p *pass) (*ctrl.Result, error) {
	halt := recordedHalt(&p.status)
	if halt == nil || whatsappv1alpha1.HaltLiftsByItself(halt.Reason) {
		return nil, nil
	}
	v := &verdict{halt.Reason, halt.Message}
	if halt.Type == whatsappv1alpha1.ConditionConflict {
		p.conflict = v
	} else {
		p.degraded = v
	}
	return stop()
}

// ownedObjects returns, empty but named, every object the controller creates for a resource,
// the session pod last.
func ownedObjects(wac *whatsappv1alpha1.WhatsAppConnection) []client.Object {
	named := func(obj client.Object, name string) client.Object {
		obj.SetNamespace(wac.Namespace)
		obj.SetName(name)
		return obj
	}
	objs := []client.Object{
		named(&coordinationv1.Lease{}, sessionName(wac)),
		named(&rbacv1.RoleBinding{}, sessionName(wac)),
		named(&rbacv1.Role{}, sessionName(wac)),
		named(&corev1.ServiceAccount{}, sessionName(wac)),
		named(&corev1.Service{}, sessionName(wac)),
		named(&networkingv1.NetworkPolicy{}, sessionName(wac)),
	}
	if wac.Spec.Store.SQLite != nil {
		objs = append(objs, named(&corev1.PersistentVolumeClaim{}, storeName(wac)))
	}
	return append(objs, named(&corev1.Pod{}, sessionName(wac)))
}

// checkOwnership refuses to go on while an object with one of the expected names exists and is
// not controlled by this resource. The controller never adopts or overwrites such an object.
func (r *WhatsAppConnectionReconciler) checkOwnership(ctx context.Context, p *pass) (*ctrl.Result, error) {
	for _, obj := range ownedObjects(p.wac) {
		err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !metav1.IsControlledBy(obj, p.wac) {
			p.conflict = r.notOwned(obj).verdict()
			return stop()
		}
	}
	return nil, nil
}

// notOwnedError ends a pass that found, by failing to create an object, that one with that name
// exists and is not controlled by the resource. reconcile turns it into a ResourceNotOwned halt.
// With unlabelled, the object is the resource's own but lost its connection label, so the cache
// no longer shows it; the controller has no right to patch it back.
type notOwnedError struct {
	kind, namespace, name string
	unlabelled            bool
}

func (e *notOwnedError) Error() string {
	if e.unlabelled {
		return fmt.Sprintf("%s %s/%s is controlled by this WhatsAppConnection but lost its label %s", e.kind, e.namespace, e.name, whatsappv1alpha1.ConnectionLabel)
	}
	if e.namespace == "" { // cluster-scoped
		return fmt.Sprintf("%s %s exists and is not controlled by this WhatsAppConnection", e.kind, e.name)
	}
	return fmt.Sprintf("%s %s/%s exists and is not controlled by this WhatsAppConnection", e.kind, e.namespace, e.name)
}

func (e *notOwnedError) verdict() *verdict {
	if e.unlabelled {
		return &verdict{whatsappv1alpha1.ReasonResourceNotOwned, e.Error() + "; the controller cannot see it without it. Put the label back to continue"}
	}
	return &verdict{whatsappv1alpha1.ReasonResourceNotOwned,
		e.Error() + "; the controller never adopts or overwrites it. Delete or rename it to continue"}
}

func (r *WhatsAppConnectionReconciler) notOwned(obj client.Object) *notOwnedError {
	kind, _ := apiutil.GVKForObject(obj, r.Scheme)
	return &notOwnedError{kind: kind.Kind, namespace: obj.GetNamespace(), name: obj.GetName()}
}

// notOwnedRecheck is how often a resource blocked by an object the cache cannot show (it lacks
// the connection label, so no event tells when it goes) looks again.
const notOwnedRecheck = 10 * time.Second

// alreadyExists follows a create that failed because the name is taken. The cache holds only
// labelled objects, so the taker is read around it: when it is this resource's own object the
// cache is behind; otherwise it is a blocker (a notOwnedError).
func (r *WhatsAppConnectionReconciler) alreadyExists(ctx context.Context, wac *whatsappv1alpha1.WhatsAppConnection, obj client.Object) (*ctrl.Result, error) {
	current, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return stopFor(cacheLag)
	}
	err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), current)
	if apierrors.IsNotFound(err) {
		return stopFor(cacheLag) // gone in the meantime
	}
	if err != nil {
		return nil, err
	}
	if !metav1.IsControlledBy(current, wac) {
		return nil, r.notOwned(current)
	}
	if _, labelled := current.GetLabels()[whatsappv1alpha1.ConnectionLabel]; !labelled {
		e := r.notOwned(current)
		e.unlabelled = true
		return nil, e
	}
	return stopFor(cacheLag)
}

// checkDuplicates halts the younger of two resources that claim the same phone number or the
// same device (the older one, by creation time and then name, keeps its session). Claims are
// compared within a namespace unless the manager runs with --cluster-wide-claims.
func (r *WhatsAppConnectionReconciler) checkDuplicates(ctx context.Context, p *pass) (*ctrl.Result, error) {
	for _, c := range claims {
		value := c.value(p.wac)
		if value == "" {
			continue
		}
		others, err := r.claimants(ctx, c, value, p.wac.Namespace)
		if err != nil {
			return nil, err
		}
		v := duplicateClaim(p.wac, c, value, others)
		if v == nil {
			continue
		}
		p.conflict = v
		if p.pod != nil && p.pod.DeletionTimestamp.IsZero() {
			return r.deletePodAndWait(ctx, p, "SessionStopped", "stopping the session: "+p.conflict.message)
		}
		return stop()
	}
	return nil, nil
}

// duplicateClaim is the Conflict verdict for wac when an older live resource among claimants
// claims value too, or nil: of two claimants the younger halts. Another namespace is another
// tenant: its objects are not named to this one.
func duplicateClaim(wac *whatsappv1alpha1.WhatsAppConnection, c claim, value string, claimants []whatsappv1alpha1.WhatsAppConnection) *verdict {
	for i := range claimants {
		other := &claimants[i]
		if other.UID == wac.UID || !other.DeletionTimestamp.IsZero() || !olderThan(other, wac) {
			continue
		}
		holder := "an older WhatsAppConnection in another namespace"
		if other.Namespace == wac.Namespace {
			holder = "the older WhatsAppConnection " + other.Name
		}
		return &verdict{c.reason, fmt.Sprintf(
			"%s %s is already claimed by %s; this one does not run a session while that one exists",
			c.what, value, holder)}
	}
	return nil
}

// claimants lists the resources that claim value: in namespace ns, or in every namespace the
// manager watches when it runs with cluster-wide claims.
func (r *WhatsAppConnectionReconciler) claimants(ctx context.Context, c claim, value, ns string) ([]whatsappv1alpha1.WhatsAppConnection, error) {
	opts := []client.ListOption{client.MatchingFields{c.index: value}}
	if !r.ClusterWideClaims {
		opts = append(opts, client.InNamespace(ns))
	}
	list := &whatsappv1alpha1.WhatsAppConnectionList{}
	err := r.List(ctx, list, opts...)
	return list.Items, err
}

// olderThan orders resources by creation time, then by namespace and name, so that exactly one
// of two claimants wins.
func olderThan(a, b *whatsappv1alpha1.WhatsAppConnection) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

// checkLeaseHolder halts while the Lease is held, and not expired, by an identity that is not
// one of this resource's session pods: that session could never lead. Expired means the
// controller has seen the same record for its whole duration on its own clock (never by
// comparing renewTime, another machine's clock, with its own), and the pass comes back then, so
// the halt lifts when the Lease expires even if nothing else happens.
func (r *WhatsAppConnectionReconciler) checkLeaseHolder(ctx context.Context, p *pass) (*ctrl.Result, error) {
	lease := &coordinationv1.Lease{}
	err := r.Get(ctx, client.ObjectKey{Namespace: p.wac.Namespace, Name: sessionName(p.wac)}, lease)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if metav1.IsControlledBy(lease, p.wac) {
		p.lease = lease
	}
	holder := foreignHolder(lease, sessionName(p.wac))
	if holder == "" {
		return nil, nil
	}
	wait := r.leaseExpiresIn(lease)
	if wait <= 0 {
		return nil, nil
	}
	p.conflict = &verdict{whatsappv1alpha1.ReasonLeaseHeldElsewhere, fmt.Sprintf(
		"Lease %s/%s is held by %q, not by this resource's session pod %q; the session cannot lead while it is",
		lease.Namespace, lease.Name, holder, sessionName(p.wac))}
	return stopFor(wait)
}

// foreignHolder is the holder of the session Lease when it is not one of the resource's session
// pods (named session, the pod's name then "_" and its UID), or "" when it is free or ours.
func foreignHolder(lease *coordinationv1.Lease, session string) string {
	holder := holderOf(lease)
	if holder == "" || holder == session || sessionenv.IsSessionIdentity(holder, session) {
		return ""
	}
	return holder
}

// haltOnSessionReport halts on what the current session reports: WhatsApp replaced the
// connection, or the session used up its reconnect attempts.
func (r *WhatsAppConnectionReconciler) haltOnSessionReport(_ context.Context, p *pass) (*ctrl.Result, error) {
	conn := p.trustedConnection()
	if conn == nil {
		return nil, nil
	}
	if conn.State == whatsappv1alpha1.SessionReplaced {
		p.conflict = &verdict{whatsappv1alpha1.ReasonStreamReplaced,
			"WhatsApp closed this session because another client connected with the same device keys (stream error conflict/replaced). " +
				"The session stopped and will not reconnect. Stop the other client, then set the " +
				whatsappv1alpha1.ReconnectRequestedAtAnnotation + " annotation to a new value"}
		return stop()
	}
	if conn.State == whatsappv1alpha1.SessionStoreError && conn.FailureCode == sessionenv.StoreClassOwnedElsewhere {
		// The session retries with backoff; the condition follows its report.
		p.conflict = &verdict{whatsappv1alpha1.ReasonStoreOwnedElsewhere, conn.Message}
		return stop()
	}
	if conn.UnexpectedAccount != "" {
		// No stop: the session shows a new QR code for the right phone.
		p.conflict = &verdict{whatsappv1alpha1.ReasonUnexpectedAccount, fmt.Sprintf(
			"a phone of account %s, not spec.pairing.phoneNumber %s, linked this device: the session logged that device out. "+
				"Scan the new QR code with the phone of %s; whoever can read this resource can read its QR code",
			conn.UnexpectedAccount, p.wac.Spec.Pairing.PhoneNumber, p.wac.Spec.Pairing.PhoneNumber)}
		return nil, nil
	}
	if limit := p.wac.Spec.Reconnect.Limit(); conn.ReconnectAttempts >= limit {
		p.degraded = &verdict{whatsappv1alpha1.ReasonReconnectLimit, fmt.Sprintf(
			"%d consecutive connection attempts failed (spec.reconnect.maxAttempts=%d): %s. Set the %s annotation to try again",
			conn.ReconnectAttempts, limit, conn.Message, whatsappv1alpha1.ReconnectRequestedAtAnnotation)}
		return stop()
	}
	return nil, nil
}
