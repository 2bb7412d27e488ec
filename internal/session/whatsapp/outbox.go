package whatsapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
)

// SendOptions configure the outbox of an open client (the send API's queue).
type SendOptions struct {
	// Slot, when set, holds the client's outbox while the client is open, for the send API.
	Slot *outbox.Slot
	// Rate and Burst limit sends per connection (default outbox.DefaultRate, DefaultBurst).
	Rate  rate.Limit
	Burst int
	// Configure, when set, sees the outbox before its worker starts. Only tests set it.
	Configure func(*outbox.Outbox)
}

// sendTimeout bounds the wait for WhatsApp's acknowledgement of one send (whatsmeow's default
// is 75 s). whatsmeow sends one message at a time per client, so this is also how long one
// unanswered send can hold back every other chat; a timed-out send is retried with its id.
const sendTimeout = 20 * time.Second

// outboxRun is the outbox worker of an open client; it runs until the client closes.
type outboxRun struct {
	box    *outbox.Outbox
	slot   *outbox.Slot
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startOutbox(ctx context.Context, db *sql.DB, dialect string, a *client, o SendOptions, log logr.Logger) (*outboxRun, error) {
	store, err := outbox.Open(ctx, db, dialect)
	if err != nil {
		return nil, err
	}
	box := outbox.New(store, a)
	box.OnChange = a.recordStatus
	box.Worker.Log = log
	box.Worker.Rate, box.Worker.Burst = o.Rate, o.Burst
	if o.Slot != nil {
		box.Worker.Counters = &o.Slot.Counters
	}
	if o.Configure != nil {
		o.Configure(box)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	r := &outboxRun{box: box, slot: o.Slot, cancel: cancel}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		box.Worker.Run(runCtx)
	}()
	if r.slot != nil {
		r.slot.Set(box)
	}
	return r, nil
}

func (r *outboxRun) stop() {
	if r == nil {
		return
	}
	if r.slot != nil {
		r.slot.Set(nil)
	}
	r.cancel()
	r.wg.Wait()
}

// Send implements outbox.Sender: one text message with its fixed WhatsApp id.
func (a *client) Send(ctx context.Context, to, text, waID string) (time.Time, error) {
	cli := a.current.Load()
	if cli == nil || !cli.IsLoggedIn() {
		return time.Time{}, outbox.ErrUnavailable
	}
	jid, err := types.ParseJID(to)
	if err != nil {
		return time.Time{}, &outbox.PermanentError{Reason: "not a WhatsApp address"}
	}
	resp, err := cli.SendMessage(ctx, jid, &waE2E.Message{Conversation: proto.String(text)},
		whatsmeow.SendRequestExtra{ID: waID, Timeout: sendTimeout})
	if err != nil {
		return time.Time{}, sendError(err)
	}
	return resp.Timestamp, nil
}

// sendError sorts whatsmeow's send errors: not connected (the attempt does not count), refused
// for good (the message fails), or worth another attempt with the same id.
func sendError(err error) error {
	switch {
	case errors.Is(err, whatsmeow.ErrNotConnected), errors.Is(err, whatsmeow.ErrNotLoggedIn):
		return fmt.Errorf("%w: %s", outbox.ErrUnavailable, safeError(err))
	case errors.Is(err, whatsmeow.ErrServerReturnedError):
		return &outbox.PermanentError{Reason: "WhatsApp refused the message: " + err.Error()}
	case errors.Is(err, whatsmeow.ErrRecipientADJID), errors.Is(err, whatsmeow.ErrUnknownServer):
		return &outbox.PermanentError{Reason: "not a chat this API sends to: " + err.Error()}
	case strings.Contains(err.Error(), "no LID found"):
		// whatsmeow has no sentinel for it: usync knows no such account.
		return &outbox.PermanentError{Reason: "the number is not on WhatsApp"}
	}
	return safeError(err)
}

// outboxReceipts moves sent messages on when the recipient's phone reports them delivered or
// read.
func (a *client) outboxReceipts(evt any) {
	r, ok := evt.(*events.Receipt)
	if !ok || r.IsFromMe || r.IsGroup || a.outbox == nil {
		return
	}
	var kind outbox.State
	switch r.Type {
	case types.ReceiptTypeDelivered:
		kind = outbox.Delivered
	case types.ReceiptTypeRead:
		kind = outbox.Read
	default:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.outbox.box.Receipt(ctx, r.MessageIDs, kind, r.Timestamp); err != nil {
		a.log.Warnf("Recording a receipt in the outbox failed: %v", err)
	}
}
