package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/conditions"
)

// givenUpWarnings turns the session's report that a sink gave up on events (EventsDelivering
// False, EventsGivenUp) into a Warning event on the resource. The session cannot record events
// itself: its Role has no right on them, and a create right cannot be narrowed to one object,
// so granting it would let a session write any event in its namespace. The session changes the
// condition once per episode (its message keeps the count of the episode's first report), so
// one Warning per sink per episode, never one per event.
//
// It remembers, per resource, the message it last warned about; a new manager warns once more
// about an episode still under way.
type givenUpWarnings struct {
	mu   sync.Mutex
	last map[types.UID]string
}

// warnGivenUp records the Warning if the resource's condition is a given-up episode not warned
// about yet, and forgets an episode that ended.
func (r *WhatsAppConnectionReconciler) warnGivenUp(p *pass) {
	w := &r.givenUp
	c := conditions.Get(p.wac.Status.Conditions, whatsappv1alpha1.ConditionEventsDelivering)
	w.mu.Lock()
	if w.last == nil {
		w.last = map[types.UID]string{}
	}
	uid := p.wac.UID
	if c == nil || c.Reason != whatsappv1alpha1.ReasonEventsGivenUp || !p.wac.DeletionTimestamp.IsZero() {
		delete(w.last, uid)
		w.mu.Unlock()
		return
	}
	fresh := w.last[uid] != c.Message
	w.last[uid] = c.Message
	w.mu.Unlock()
	if fresh {
		// The message names the sink, the count and the reason; never an event's content.
		r.warn(p.wac, whatsappv1alpha1.ReasonEventsGivenUp, "Deliver", c.Message)
	}
}

// givenUpChanged: the session started or ended a given-up episode, or started another one; a
// pass records the Warning (worthAPass).
func givenUpChanged(o, n *whatsappv1alpha1.WhatsAppConnection) bool {
	episode := func(w *whatsappv1alpha1.WhatsAppConnection) string {
		if c := conditions.Get(w.Status.Conditions, whatsappv1alpha1.ConditionEventsDelivering); c != nil && c.Reason == whatsappv1alpha1.ReasonEventsGivenUp {
			return c.Message
		}
		return ""
	}
	return episode(o) != episode(n)
}

// forgetGivenUp drops what is remembered about a deleted resource.
func (r *WhatsAppConnectionReconciler) forgetGivenUp(uid types.UID) {
	r.givenUp.mu.Lock()
	delete(r.givenUp.last, uid)
	r.givenUp.mu.Unlock()
}
