package whatsapp

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
)

// A read receipt from another user is an event with a stable id (a redelivered receipt is the
// same event); receipts of the own account's devices and protocol receipts are not events.
func TestReceiptsFromOthersAreEvents(t *testing.T) {
	other := types.NewJID("15550001234", types.DefaultUserServer)
	receipt := func(typ types.ReceiptType, fromMe bool) *events.Receipt {
		return &events.Receipt{MessageSource: types.MessageSource{Chat: other, Sender: other, IsFromMe: fromMe},
			MessageIDs: []types.MessageID{"3EB0AA", "3EB0BB"}, Timestamp: time.Unix(1700000000, 0), Type: typ}
	}
	ev, ok := inboxEvent(receipt(types.ReceiptTypeRead, false))
	if !ok || ev.Type != inbox.TypeReceipt || ev.Chat != other.String() || ev.MessageID != "3EB0AA" {
		t.Fatalf("read receipt: %+v, %v", ev, ok)
	}
	if want := `{"chat":"15550001234@s.whatsapp.net","sender":"15550001234@s.whatsapp.net","type":"read","messageIds":["3EB0AA","3EB0BB"],"timestamp":"2023-11-14T22:13:20Z"}`; string(ev.Data) != want {
		t.Errorf("body %s, want %s", ev.Data, want)
	}
	again, _ := inboxEvent(receipt(types.ReceiptTypeRead, false))
	delivered, _ := inboxEvent(receipt(types.ReceiptTypeDelivered, false))
	if again.ID != ev.ID || delivered.ID == ev.ID {
		t.Errorf("ids: same receipt %s/%s, delivered %s", ev.ID, again.ID, delivered.ID)
	}
	for name, r := range map[string]*events.Receipt{
		"own device":  receipt(types.ReceiptTypeRead, true),
		"retry":       receipt(types.ReceiptTypeRetry, false),
		"no messages": {MessageSource: types.MessageSource{Chat: other, Sender: other}},
	} {
		if _, ok := inboxEvent(r); ok {
			t.Errorf("%s: became an event", name)
		}
	}
}
