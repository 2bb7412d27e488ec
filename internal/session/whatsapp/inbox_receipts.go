package whatsapp

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
)

// TypeConnectionChanged is the inbox type of a change of the WhatsApp connection.
const TypeConnectionChanged = "connection.changed"

// receiptBody is the JSON body of receipt events: which messages the device's account sent
// were delivered to, read or played by someone. It holds no content.
type receiptBody struct {
	Chat       string    `json:"chat"`
	Sender     string    `json:"sender"`
	IsGroup    bool      `json:"isGroup,omitempty"`
	Type       string    `json:"type"`
	MessageIDs []string  `json:"messageIds"`
	Timestamp  time.Time `json:"timestamp"`
}

// receiptTypes are the receipts worth an event, by their name in the body: what a recipient
// did with a message. Retry, sender and history-sync receipts are protocol housekeeping.
var receiptTypes = map[types.ReceiptType]string{
	types.ReceiptTypeDelivered: "delivered",
	types.ReceiptTypeRead:      "read",
	types.ReceiptTypePlayed:    "played",
}

// connectionBody is the JSON body of connection.changed events.
type connectionBody struct {
	State string    `json:"state"`
	At    time.Time `json:"at"`
}

// connectionStates are the whatsmeow events that change the connection, by state name.
func connectionState(evt any) string {
	switch evt.(type) {
	case *events.Connected:
		return "Connected"
	case *events.Disconnected:
		return "Disconnected"
	case *events.LoggedOut:
		return "LoggedOut"
	case *events.StreamReplaced:
		return "Replaced"
	case *events.TemporaryBan:
		return "TemporaryBan"
	}
	return ""
}

// moreInboxEvents maps the events the inbox keeps besides messages: receipts from other users
// and connection changes.
func moreInboxEvents(evt any) (inbox.Event, bool) {
	if e, ok := evt.(*events.Receipt); ok {
		name, keep := receiptTypes[e.Type]
		if !keep || e.IsFromMe || len(e.MessageIDs) == 0 {
			return inbox.Event{}, false
		}
		body := receiptBody{Chat: e.Chat.String(), Sender: e.Sender.String(), IsGroup: e.IsGroup, Type: name,
			MessageIDs: e.MessageIDs, Timestamp: e.Timestamp}
		data, err := json.Marshal(body)
		if err != nil {
			return inbox.Event{}, false
		}
		// A receipt is identified by who did what to which messages: a redelivered receipt is
		// the same event.
		key := name + "/" + strings.Join(e.MessageIDs, ",")
		return inbox.Event{
			ID: inbox.EventID(inbox.TypeReceipt, body.Chat, e.Sender.ToNonAD().String(), key), Type: inbox.TypeReceipt,
			Chat: body.Chat, Sender: body.Sender, MessageID: e.MessageIDs[0], Time: e.Timestamp, Data: data,
		}, true
	}
	if state := connectionState(evt); state != "" {
		now := time.Now()
		data, err := json.Marshal(connectionBody{State: state, At: now})
		if err != nil {
			return inbox.Event{}, false
		}
		return inbox.Event{
			ID:   inbox.EventID(TypeConnectionChanged, "", "", state+"/"+strconv.FormatInt(now.UnixNano(), 10)),
			Type: TypeConnectionChanged, Time: now, Data: data,
		}, true
	}
	return inbox.Event{}, false
}
