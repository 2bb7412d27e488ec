package whatsapp

import (
	"context"
	"encoding/json"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
)

// Incoming events are written to the inbox before WhatsApp hears they were received, as
// mautrix-whatsapp does: SynchronousAck makes whatsmeow send a message's receipt (or ack) only
// after every event handler returned, and a handler registered with
// AddEventHandlerWithSuccessStatus that returns false suppresses it. So a message whose row is
// not committed is never acknowledged, and WhatsApp delivers it again at the next login. The
// decrypted-event buffer keeps the plaintext of a message decrypted but not acknowledged, so the
// redelivered ciphertext (whose Signal keys are spent) yields the same message instead of an
// "old counter" error that would drop it.
func enableInbox(cli *whatsmeow.Client) {
	cli.SynchronousAck = true
	cli.EnableDecryptedEventBuffer = true
}

// putAttempts bounds how often one event's insert is tried before the handler gives up (the
// message then waits for WhatsApp's redelivery); putBackoff is the first pause between tries.
const (
	putAttempts = 3
	putBackoff  = 100 * time.Millisecond
)

// recordIncoming is the success-status handler: true when evt is not an inbox event or its row
// is committed (now or by an earlier delivery).
func (a *client) recordIncoming(evt any) bool {
	ev, ok := inboxEvent(evt)
	if !ok {
		return true
	}
	delay := putBackoff
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		stored, err := a.inbox.Put(ctx, ev)
		cancel()
		a.delivery.setStoreFull(storeFull(err))
		if err == nil {
			if stored {
				a.delivery.notify()
			}
			return true
		}
		if attempt == putAttempts {
			// Only the id and type: the event is personal data.
			a.log.Errorf("Inbox write failed, not acknowledging event %s (%s): %v", ev.ID, ev.Type, err)
			return false
		}
		select {
		case <-time.After(delay):
		case <-a.done:
			return false
		}
		delay *= 2
	}
}

// messageBody is the JSON body of message events.
type messageBody struct {
	ID        string          `json:"id"`
	Chat      string          `json:"chat"`
	Sender    string          `json:"sender"`
	SenderAlt string          `json:"senderAlt,omitempty"`
	IsGroup   bool            `json:"isGroup,omitempty"`
	PushName  string          `json:"pushName,omitempty"`
	Timestamp time.Time       `json:"timestamp"`
	Text      string          `json:"text,omitempty"`
	Message   json.RawMessage `json:"message,omitempty"`
	// Undecryptable events only.
	Unavailable     bool   `json:"unavailable,omitempty"`
	UnavailableType string `json:"unavailableType,omitempty"`
	DecryptFailMode string `json:"decryptFailMode,omitempty"`
}

func infoBody(info types.MessageInfo) messageBody {
	return messageBody{
		ID: info.ID, Chat: info.Chat.String(), Sender: info.Sender.String(), SenderAlt: jidOrEmpty(info.SenderAlt),
		IsGroup: info.IsGroup, PushName: info.PushName, Timestamp: info.Timestamp,
	}
}

func jidOrEmpty(j types.JID) string {
	if j.IsEmpty() {
		return ""
	}
	return j.String()
}

// inboxEvent maps the whatsmeow events the inbox keeps.
func inboxEvent(evt any) (inbox.Event, bool) {
	var typ string
	var info types.MessageInfo
	var body messageBody
	switch e := evt.(type) {
	case *events.Message:
		typ, info = inbox.TypeMessage, e.Info
		body = infoBody(info)
		if e.Message != nil {
			body.Text = e.Message.GetConversation()
			if body.Text == "" {
				body.Text = e.Message.GetExtendedTextMessage().GetText()
			}
			if raw, err := protojson.Marshal(e.Message); err == nil {
				body.Message = raw
			}
		}
	case *events.UndecryptableMessage:
		typ, info = inbox.TypeUndecryptable, e.Info
		body = infoBody(info)
		body.Unavailable, body.UnavailableType, body.DecryptFailMode = e.IsUnavailable, string(e.UnavailableType), string(e.DecryptFailMode)
	default:
		return moreInboxEvents(evt)
	}
	data, err := json.Marshal(body)
	if err != nil {
		return inbox.Event{}, false
	}
	return inbox.Event{
		ID:        inbox.EventID(typ, info.Chat.String(), info.Sender.ToNonAD().String(), info.ID),
		Type:      typ,
		Chat:      info.Chat.String(),
		Sender:    info.Sender.String(),
		MessageID: info.ID,
		Time:      info.Timestamp,
		Data:      data,
	}, true
}
