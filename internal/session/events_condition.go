package session

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// EventsFieldManager owns the EventsDelivering condition: the session's only entry in
// status.conditions, applied apart from status.connection so that each has one owner.
const EventsFieldManager = "whatsapp-session-events"

// SinkFailure is a sink that is failing and the fixed-text class of its last error.
type SinkFailure struct{ Sink, Class string }

// SinkStranding is a sink that gave up on events no dead-letter destination took (they stay in
// the inbox): how many at the first report of the episode, and why (events.GiveUpMaxAge or
// events.GiveUpRefused).
type SinkStranding struct {
	Sink, Reason string
	Events       int64
}

// SinksHealth reports the event sinks: how many there are, which are failing and which gave up
// on events (in spec order). The client sends it at start and on changes, at most once per
// interval.
type SinksHealth struct {
	Sinks    int
	Failing  []SinkFailure
	Stranded []SinkStranding
	// StoreFull: the last inbox write found the device store full; the message was not
	// acknowledged, so WhatsApp delivers it again.
	StoreFull bool
}

func (SinksHealth) isEvent() {}

// eventsConditionWriter is the publisher's part that writes the EventsDelivering condition
// (nil removes it).
type eventsConditionWriter interface {
	applyEventsCondition(ctx context.Context, c *metav1.Condition) error
}

// onSinksHealth writes the EventsDelivering condition when it differs from the resource's:
// transitions only, never per event, and nothing about an event's content.
func (m *machine) onSinksHealth(ctx context.Context, h SinksHealth) {
	w, ok := m.pub.(eventsConditionWriter)
	if !ok || m.wac == nil {
		return
	}
	var current *metav1.Condition
	for i := range m.wac.Status.Conditions {
		if c := &m.wac.Status.Conditions[i]; c.Type == whatsappv1alpha1.ConditionEventsDelivering {
			current = c
		}
	}
	want := sinksCondition(h)
	switch {
	case want == nil && current == nil:
		return
	case want != nil && current != nil && current.Status == want.Status && current.Reason == want.Reason && current.Message == want.Message:
		return
	}
	if want != nil {
		want.ObservedGeneration = m.wac.Generation
		want.LastTransitionTime = metav1.NewTime(m.now().Truncate(1e9))
		if current != nil && current.Status == want.Status {
			want.LastTransitionTime = current.LastTransitionTime
		}
	}
	wctx, cancel := context.WithTimeout(ctx, m.cfg.RenewDeadline)
	defer cancel()
	if err := w.applyEventsCondition(wctx, want); err != nil {
		// The client reports again within its interval; the write is tried then.
		m.log.Info("cannot write the EventsDelivering condition; will try again", "error", err.Error())
		return
	}
	if want == nil {
		m.log.Info("no event sinks: EventsDelivering removed")
	} else {
		m.log.Info("EventsDelivering", "status", want.Status, "reason", want.Reason, "message", want.Message)
	}
}

// sinksCondition is the condition for h; nil without sinks (unless the store is full).
func sinksCondition(h SinksHealth) *metav1.Condition {
	c := &metav1.Condition{Type: whatsappv1alpha1.ConditionEventsDelivering}
	if h.StoreFull {
		// Nothing new can be received: that comes before anything about delivery.
		c.Status, c.Reason = metav1.ConditionFalse, whatsappv1alpha1.ReasonStoreFull
		c.Message = "the device store is full: incoming messages are not acknowledged, so WhatsApp keeps them and " +
			"delivers them again once there is room (grow the volume or the database, or shorten spec.events.retention)"
		return c
	}
	if h.Sinks == 0 {
		return nil
	}
	if len(h.Stranded) > 0 {
		// Events left behind matter more than a sink that is retrying: say that first.
		s := h.Stranded[0]
		c.Status, c.Reason = metav1.ConditionFalse, whatsappv1alpha1.ReasonEventsGivenUp
		c.Message = fmt.Sprintf("sink %s gave up on %d event(s) (%s) and no dead-letter sink took them; they stay in the inbox until the retention ends",
			s.Sink, s.Events, givenUpWhy(s.Reason))
		var others []string
		for _, o := range h.Stranded[1:] {
			others = append(others, o.Sink)
		}
		for _, f := range h.Failing {
			if f.Sink != s.Sink && !slices.Contains(others, f.Sink) {
				others = append(others, f.Sink)
			}
		}
		if len(others) > 0 {
			c.Message += fmt.Sprintf(" (also failing: %s)", strings.Join(others, ", "))
		}
		return c
	}
	if len(h.Failing) == 0 {
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, whatsappv1alpha1.ReasonEventsDelivered, "every sink takes its events"
		return c
	}
	f := h.Failing[0]
	c.Status, c.Reason = metav1.ConditionFalse, whatsappv1alpha1.ReasonSinkFailing
	c.Message = fmt.Sprintf("sink %s is failing: %s; its events wait in the inbox and are retried", f.Sink, f.Class)
	if n := len(h.Failing) - 1; n > 0 {
		names := make([]string, 0, n)
		for _, o := range h.Failing[1:] {
			names = append(names, o.Sink)
		}
		c.Message += fmt.Sprintf(" (also failing: %s)", strings.Join(names, ", "))
	}
	return c
}

// givenUpWhy says why events were given up on, in the condition's words.
func givenUpWhy(reason string) string {
	switch reason {
	case "maxAge":
		return "older than the sink's maximum age"
	case "refused":
		return "refused by the sink with a status that is not retried"
	}
	return reason
}

// applyEventsCondition applies the condition as the session's events field manager; nil gives
// it up, which removes it. Only the Lease holder writes.
func (p *statusPublisher) applyEventsCondition(ctx context.Context, c *metav1.Condition) error {
	if !p.fence.holding() {
		return errNotHolding
	}
	status := sessionStatus{}
	if c != nil {
		status.Conditions = []metav1.Condition{*c}
	}
	return p.api.applyStatus(ctx, status, EventsFieldManager)
}
