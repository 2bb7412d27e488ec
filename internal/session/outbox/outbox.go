package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Outbox is the outbox of one open client: its table, its worker, and waiters for state
// changes.
type Outbox struct {
	Store  *Store
	Worker *Worker
	// OnChange, when set, sees each message whose state changed, once the change is stored
	// (the session makes status CloudEvents of them). It runs on the goroutine that changed
	// the message and must not block for long.
	OnChange func(Message)

	mu      sync.Mutex
	changed chan struct{}
}

// New wires a worker to store; Worker fields may be set before Run.
func New(store *Store, sender Sender) *Outbox {
	o := &Outbox{Store: store, changed: make(chan struct{})}
	o.Worker = &Worker{Store: store, Sender: sender, Changed: func(id string) { o.notifyChange(id) }}
	return o
}

// Request is a message to send.
type Request struct {
	// ID is the caller's idempotency key; empty makes one up.
	ID       string
	To, Text string
}

// Submit queues r durably; the same ID again returns the first message (created false).
func (o *Outbox) Submit(ctx context.Context, r Request) (Message, bool, error) {
	id := r.ID
	if id == "" {
		id = NewWAID()
	}
	m, created, err := o.Store.Enqueue(ctx, Message{ID: id, WAID: NewWAID(), To: r.To, Text: r.Text})
	if created {
		o.notifyChange(m.ID)
		o.Worker.Notify()
	}
	return m, created, err
}

// Receipt applies a phone's receipt (kind Delivered or Read) to the messages with these
// WhatsApp ids.
func (o *Outbox) Receipt(ctx context.Context, waIDs []string, kind State, at time.Time) error {
	ids, err := o.Store.Receipt(ctx, waIDs, kind, at)
	if len(ids) > 0 {
		o.notifyChange(ids...)
	}
	return err
}

// Wait returns the message id once done holds for it, or when ctx ends (then with ctx's error
// and the last state read).
func (o *Outbox) Wait(ctx context.Context, id string, done func(Message) bool) (Message, error) {
	for {
		o.mu.Lock()
		changed := o.changed
		o.mu.Unlock()
		m, err := o.Store.Get(ctx, id)
		if err != nil || done(m) {
			return m, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return m, ctx.Err()
		}
	}
}

// notifyChange tells OnChange and the waiters about the messages ids.
func (o *Outbox) notifyChange(ids ...string) {
	if o.OnChange != nil {
		for _, id := range ids {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := o.Store.Get(ctx, id)
			cancel()
			if err == nil {
				o.OnChange(m)
			}
		}
	}
	o.broadcast()
}

func (o *Outbox) broadcast() {
	o.mu.Lock()
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
}

// NewWAID makes a WhatsApp message id in the shape WhatsApp Web clients use (3EB0 and 16
// hexadecimal digits, as whatsmeow's GenerateMessageID).
func NewWAID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "3EB0" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// Slot holds the outbox of the client that is open now (nil while none is: the session does not
// hold the Lease, or its store is not open). The client sets it; the send API reads it.
type Slot struct {
	p atomic.Pointer[Outbox]
	// Counters count the sends of every outbox this slot held.
	Counters Counters
}

// Set makes o the current outbox (nil: none).
func (s *Slot) Set(o *Outbox) { s.p.Store(o) }

// Get returns the current outbox, or nil.
func (s *Slot) Get() *Outbox {
	if s == nil {
		return nil
	}
	return s.p.Load()
}
