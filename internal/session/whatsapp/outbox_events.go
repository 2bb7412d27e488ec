package whatsapp

import (
	"context"
	"encoding/json"
	"time"

	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
)

// statusEventType is the inbox type of an outgoing message's state change; sinks get it as the
// CloudEvent io.waoperator.whatsapp.message.status.
const statusEventType = "message.status"

// statusBody is the JSON body of a status event: the send API's view of the message, without
// its text.
type statusBody struct {
	ID          string     `json:"id"`
	WhatsAppID  string     `json:"whatsappId"`
	To          string     `json:"to"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	Reason      string     `json:"reason,omitempty"`
	SentAt      *time.Time `json:"sentAt,omitempty"`
	DeliveredAt *time.Time `json:"deliveredAt,omitempty"`
	ReadAt      *time.Time `json:"readAt,omitempty"`
	FailedAt    *time.Time `json:"failedAt,omitempty"`
}

// recordStatus puts a status event in the inbox, so that the sinks learn each state a sent
// message reaches. Its id is derived from the WhatsApp id and the state: a state reached
// twice (a retry is "sending" again) is one event.
func (a *client) recordStatus(m outbox.Message) {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	data, err := json.Marshal(statusBody{ID: m.ID, WhatsAppID: m.WAID, To: m.To, State: string(m.State), Attempts: m.Attempts,
		Reason: m.Reason, SentAt: opt(m.SentAt), DeliveredAt: opt(m.DeliveredAt), ReadAt: opt(m.ReadAt), FailedAt: opt(m.FailedAt)})
	if err != nil {
		return
	}
	ev := inbox.Event{
		ID:   inbox.EventID(statusEventType, m.To, "", m.WAID+"/"+string(m.State)),
		Type: statusEventType, Chat: m.To, MessageID: m.WAID, Time: time.Now(), Data: data,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stored, err := a.inbox.Put(ctx, ev)
	if err != nil {
		// The caller id only: the row is personal data.
		a.log.Warnf("Recording the status of outgoing message %s failed: %v", m.ID, err)
		return
	}
	if stored {
		a.delivery.notify()
	}
}
