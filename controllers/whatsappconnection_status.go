package controllers

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/conditions"
)

// verdict is a condition reason with its message.
type verdict struct {
	reason, message string
}

// pass is one reconcile of one resource: what was read, and the controller's part of the
// status as the steps decide it.
type pass struct {
	wac    *whatsappv1alpha1.WhatsAppConnection
	status whatsappv1alpha1.WhatsAppConnectionStatus // controller-owned fields, being decided
	pod    *corev1.Pod
	lease  *coordinationv1.Lease // the session Lease, once checkLeaseHolder has read it

	conflict  *verdict // Conflict=True: halted until a person acts or the blocker goes
	degraded  *verdict // Degraded=True and halted (reconnect limit)
	waiting   *verdict // Ready=False while the controller waits for an input
	suspended bool
	// statusNext: the pass ended to let the next one finish (see ensurePod), which writes the
	// status.
	statusNext bool
	// recheckAfter, when set, is when the pass must look again (a live holder's Lease, see
	// replaceUnresponsive) whatever the steps after it decide.
	recheckAfter time.Duration
}

func newPass(wac *whatsappv1alpha1.WhatsAppConnection) *pass {
	st := *wac.Status.DeepCopy()
	st.Connection = nil // owned by the session
	st.Conditions = withoutSessionConditions(st.Conditions)
	return &pass{wac: wac, status: st}
}

// trustedConnection is status.connection when the current, live session pod wrote it. A report
// from an older pod, or from a pod on its way out, says nothing about the present.
func (p *pass) trustedConnection() *whatsappv1alpha1.ConnectionStatus {
	c := p.wac.Status.Connection
	if c == nil || c.Holder == nil || p.pod == nil || !p.pod.DeletionTimestamp.IsZero() {
		return nil
	}
	if c.Holder.Pod != p.pod.Name || c.Holder.UID != string(p.pod.UID) {
		return nil
	}
	return c
}

// sessionDegradedReasons maps the session's terminal states to Degraded reasons. The session
// stays in these states by itself; the controller only reports them.
var sessionDegradedReasons = map[whatsappv1alpha1.SessionState]string{
	whatsappv1alpha1.SessionClientOutdated: whatsappv1alpha1.ReasonClientOutdated,
	whatsappv1alpha1.SessionTemporaryBan:   whatsappv1alpha1.ReasonTemporaryBan,
	whatsappv1alpha1.SessionConnectFailure: whatsappv1alpha1.ReasonConnectFailure,
	whatsappv1alpha1.SessionPairingTimeout: whatsappv1alpha1.ReasonPairingTimeout,
	whatsappv1alpha1.SessionStoreError:     whatsappv1alpha1.ReasonStoreError,
}

var sessionPhases = map[whatsappv1alpha1.SessionState]whatsappv1alpha1.Phase{
	whatsappv1alpha1.SessionStarting:        whatsappv1alpha1.PhaseConnecting,
	whatsappv1alpha1.SessionWaitingForLease: whatsappv1alpha1.PhaseConnecting,
	whatsappv1alpha1.SessionConnecting:      whatsappv1alpha1.PhaseConnecting,
	whatsappv1alpha1.SessionPairing:         whatsappv1alpha1.PhasePairing,
	whatsappv1alpha1.SessionConnected:       whatsappv1alpha1.PhaseConnected,
	whatsappv1alpha1.SessionDisconnected:    whatsappv1alpha1.PhaseDisconnected,
	whatsappv1alpha1.SessionLoggedOut:       whatsappv1alpha1.PhaseLoggedOut,
}

// summarize turns the pass's decisions and the trusted session report into phase and
// conditions, and emits one event per transition into a halt.
func (r *WhatsAppConnectionReconciler) summarize(p *pass) {
	gen := p.wac.Generation
	st := &p.status
	conn := p.trustedConnection()

	st.ObservedGeneration = gen
	st.Account = p.wac.Spec.Pairing.PhoneNumber
	if c := p.wac.Status.Connection; c != nil && c.JID != "" {
		st.Account = c.JID
	}
	if p.pod != nil && p.pod.DeletionTimestamp.IsZero() {
		st.SessionPod = p.pod.Name
	} else {
		st.SessionPod = ""
	}

	degraded := p.degraded
	if degraded == nil && conn != nil {
		if reason, ok := sessionDegradedReasons[conn.State]; ok {
			degraded = &verdict{reason, conn.Message}
		}
	}

	var phase whatsappv1alpha1.Phase
	var ready verdict
	switch {
	case p.conflict != nil:
		phase, ready = whatsappv1alpha1.PhaseConflict, *p.conflict
	case degraded != nil:
		phase, ready = whatsappv1alpha1.PhaseDegraded, *degraded
	case p.suspended:
		phase, ready = whatsappv1alpha1.PhaseSuspended, verdict{whatsappv1alpha1.ReasonSuspended, "spec.suspend is true: the session pod is removed, the device store is kept"}
	case p.waiting != nil:
		phase, ready = whatsappv1alpha1.PhasePending, *p.waiting
	case conn != nil && sessionPhases[conn.State] != "":
		phase, ready = sessionPhases[conn.State], verdict{string(conn.State), conn.Message}
	default:
		phase, ready = whatsappv1alpha1.PhasePending, verdict{whatsappv1alpha1.ReasonPodPending, "waiting for the session pod to report"}
	}
	st.Phase = phase
	if ready.message == "" {
		ready.message = fmt.Sprintf("the session is %s", phase)
	}

	readyStatus := metav1.ConditionFalse
	if phase == whatsappv1alpha1.PhaseConnected {
		readyStatus, ready.message = metav1.ConditionTrue, "connected as "+conn.JID
	}
	conditions.Set(&st.Conditions, gen, whatsappv1alpha1.ConditionReady, readyStatus, ready.reason, ready.message)

	switch {
	case conn != nil && conn.State == whatsappv1alpha1.SessionConnected:
		conditions.Set(&st.Conditions, gen, whatsappv1alpha1.ConditionConnected, metav1.ConditionTrue, string(conn.State), "logged in to WhatsApp")
	case conn != nil:
		conditions.Set(&st.Conditions, gen, whatsappv1alpha1.ConditionConnected, metav1.ConditionFalse, string(conn.State), conn.Message)
	default:
		conditions.Set(&st.Conditions, gen, whatsappv1alpha1.ConditionConnected, metav1.ConditionFalse, ready.reason, "no live session")
	}

	switch {
	case conn != nil && conn.JID != "":
		conditions.Set(&st.Conditions, gen, whatsappv1alpha1.ConditionPaired, metav1.ConditionTrue, whatsappv1alpha1.ReasonPaired, "linked as "+conn.JID)
	case conn != nil && (conn.State == whatsappv1alpha1.SessionPairing || conn.State == whatsappv1alpha1.SessionLoggedOut):
		conditions.Set(&st.Conditions, gen, whatsappv1alpha1.ConditionPaired, metav1.ConditionFalse, whatsappv1alpha1.ReasonNotPaired, "the device is not linked; pair it with the code in status.connection")
	case conditions.Get(st.Conditions, whatsappv1alpha1.ConditionPaired) == nil:
		conditions.Set(&st.Conditions, gen, whatsappv1alpha1.ConditionPaired, metav1.ConditionUnknown, whatsappv1alpha1.ReasonPodPending, "no session has reported yet")
	}

	if p.conflict != nil {
		if conditions.Set(&st.Conditions, gen, whatsappv1alpha1.ConditionConflict, metav1.ConditionTrue, p.conflict.reason, p.conflict.message) {
			r.warn(p.wac, p.conflict.reason, "Halt", p.conflict.message)
		}
	} else {
		conditions.Set(&st.Conditions, gen, whatsappv1alpha1.ConditionConflict, metav1.ConditionFalse, whatsappv1alpha1.ReasonNoConflict, "no other client, resource or object claims this session")
	}
	if degraded != nil {
		if conditions.Set(&st.Conditions, gen, whatsappv1alpha1.ConditionDegraded, metav1.ConditionTrue, degraded.reason, degraded.message) {
			r.warn(p.wac, degraded.reason, "Degrade", degraded.message)
		}
	} else {
		conditions.Set(&st.Conditions, gen, whatsappv1alpha1.ConditionDegraded, metav1.ConditionFalse, whatsappv1alpha1.ReasonAsExpected, "")
	}
}

// applyStatus writes the controller's status fields through server-side apply, and only when
// they changed: an unchanged pass writes nothing.
func (r *WhatsAppConnectionReconciler) applyStatus(ctx context.Context, p *pass) error {
	current := p.wac.Status.DeepCopy()
	current.Connection = nil
	current.Conditions = withoutSessionConditions(current.Conditions)
	if equality.Semantic.DeepEqual(*current, p.status) {
		return nil
	}
	u, err := newStatusApply(p.wac.Namespace, p.wac.Name, p.status).unstructured()
	if err != nil {
		return err
	}
	return r.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldManager), client.ForceOwnership)
}

func (r *WhatsAppConnectionReconciler) warn(wac *whatsappv1alpha1.WhatsAppConnection, reason, action, message string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(wac, nil, corev1.EventTypeWarning, reason, action, "%s", message)
	}
}

func (r *WhatsAppConnectionReconciler) normal(wac *whatsappv1alpha1.WhatsAppConnection, reason, action, message string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(wac, nil, corev1.EventTypeNormal, reason, action, "%s", message)
	}
}
