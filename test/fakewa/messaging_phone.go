package fakewa

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mau.fi/libsignal/keys/prekey"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// Errors a phone reports when a message cannot be sent.
var (
	ErrNoRecipient = errors.New("fakewa: no linked device to deliver to (unknown or removed)")
	ErrOwnAccount  = errors.New("fakewa: a phone sending to its own account's devices is not emulated")
	ErrBadJID      = errors.New("fakewa: recipient must be a phone-number JID (user[:device]@s.whatsapp.net)")
)

// phoneMessenger is a phone's messaging side: its Signal peer, and a lock
// that keeps its sends in order (encrypted and routed one at a time).
type phoneMessenger struct {
	sendMu sync.Mutex
	peer   *signalPeer
}

// messenger returns the phone's messaging side, creating its Signal identity
// material and publishing its pre-key bundle (under its phone-number and LID
// JIDs) on first use.
func (p *Phone) messenger() *phoneMessenger {
	s := p.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.msgr == nil {
		p.msgr = &phoneMessenger{peer: newSignalPeer(p.identity)}
		s.publishKeysLocked(p.msgr.peer.bundle, p.JID(), p.LID())
	}
	return p.msgr
}

// LID is the phone's hidden-user (LID) JID, which the server sends as
// sender_lid and whatsmeow uses as the Signal address of the sender.
func (p *Phone) LID() types.JID { return types.NewJID(p.lidUser, types.HiddenUserServer) }

func (p *Phone) pushName() string { return "Phone " + p.user }

// SentMessage is what a phone knows about one message it sent: per recipient
// device, how it was encrypted and what the device reported back.
type SentMessage struct {
	ID      types.MessageID  `json:"id"`
	From    string           `json:"from"`
	To      string           `json:"to"`
	SentAt  time.Time        `json:"sentAt"`
	Devices []DeviceDelivery `json:"devices"`
}

// DeviceDelivery is one recipient device's view of a message.
type DeviceDelivery struct {
	Device string `json:"device"`
	// Encryption is "pkmsg" (a session opened from the device's pre-keys),
	// "msg" (an established session) or "corrupt" (SendUndecryptable).
	Encryption  string     `json:"encryption"`
	DeliveredAt *time.Time `json:"deliveredAt,omitempty"`
	ReadAt      *time.Time `json:"readAt,omitempty"`
	// RetryReceipts counts the device's "could not decrypt" receipts.
	RetryReceipts int `json:"retryReceipts,omitempty"`
	// Acked is set when the device sent <ack class="message">, with the
	// error code in AckError if it was a nack.
	Acked    bool   `json:"acked,omitempty"`
	AckError string `json:"ackError,omitempty"`
}

// sentInfo is a SentMessage under the server lock.
type sentInfo struct{ msg SentMessage }

func (si *sentInfo) device(jid types.JID) *DeviceDelivery {
	for i := range si.msg.Devices {
		if si.msg.Devices[i].Device == jid.String() {
			return &si.msg.Devices[i]
		}
	}
	return nil
}

func (si *sentInfo) noteReceipt(jid types.JID, kind string, at time.Time) {
	d := si.device(jid)
	if d == nil {
		return
	}
	switch kind {
	case "delivery":
		if d.DeliveredAt == nil {
			d.DeliveredAt = &at
		}
	case "read":
		if d.DeliveredAt == nil {
			d.DeliveredAt = &at
		}
		if d.ReadAt == nil {
			d.ReadAt = &at
		}
	case "retry":
		d.RetryReceipts++
	}
}

func (si *sentInfo) noteAck(jid types.JID, errCode string) {
	if d := si.device(jid); d != nil {
		d.Acked = true
		d.AckError = errCode
	}
}

func (si *sentInfo) snapshot() SentMessage {
	out := si.msg
	out.Devices = slices.Clone(si.msg.Devices)
	return out
}

// SendText sends a text message (waE2E.Message.Conversation) from this
// phone's account to another account: to a user JID (every linked device of
// it) or to one device JID. Each device gets its own Signal ciphertext, the
// first one a pkmsg opened from a pre-key the device uploaded, later ones
// msg once the device acknowledged the session. The server routes the
// message to the devices' live connections or queues it until they log in.
func (p *Phone) SendText(ctx context.Context, to types.JID, text string) (SentMessage, error) {
	plaintext, err := proto.Marshal(&waE2E.Message{Conversation: proto.String(text)})
	if err != nil {
		return SentMessage{}, err
	}
	return p.send(ctx, to, types.EmptyJID, padMessage(plaintext), false)
}

// SendUndecryptable sends a message whose ciphertext no device can decrypt
// (as after a lost Signal session): whatsmeow answers with a retry receipt
// and reports events.UndecryptableMessage.
func (p *Phone) SendUndecryptable(ctx context.Context, to types.JID) (SentMessage, error) {
	return p.send(ctx, to, types.EmptyJID, nil, true)
}

// send encrypts plaintext for each of to's devices; a non-empty group makes it a message in
// that group chat (see SendGroupText).
func (p *Phone) send(ctx context.Context, to, group types.JID, plaintext []byte, corrupt bool) (SentMessage, error) {
	targets, err := p.srv.recipientDevices(p, to)
	if err != nil {
		return SentMessage{}, err
	}
	m := p.messenger()
	m.sendMu.Lock()
	defer m.sendMu.Unlock()

	id := newMessageID()
	info := &sentInfo{msg: SentMessage{ID: id, From: p.JID().String(), To: to.String(), SentAt: time.Now()}}
	var participants []waBinary.Node
	for _, dev := range targets {
		encType, ciphertext := "msg", make([]byte, 64)
		if corrupt {
			_, _ = rand.Read(ciphertext)
		} else {
			encType, ciphertext, err = m.peer.encrypt(ctx, dev.SignalAddress(), func() (*prekey.Bundle, error) { return p.srv.takeBundle(dev) }, plaintext)
			if err != nil {
				return SentMessage{}, err
			}
		}
		shown := encType
		if corrupt {
			shown = "corrupt"
		}
		info.msg.Devices = append(info.msg.Devices, DeviceDelivery{Device: dev.String(), Encryption: shown})
		participants = append(participants, waBinary.Node{
			Tag:   "to",
			Attrs: waBinary.Attrs{"jid": dev},
			Content: []waBinary.Node{{
				Tag:     "enc",
				Attrs:   waBinary.Attrs{"v": "2", "type": encType},
				Content: ciphertext,
			}},
		})
	}
	p.srv.mu.Lock()
	p.srv.messagingLocked().sent[id] = info
	p.srv.mu.Unlock()
	p.srv.routeFromPhone(p, group, waBinary.Node{
		Tag:     "message",
		Attrs:   waBinary.Attrs{"id": id, "to": to.ToNonAD(), "type": "text"},
		Content: []waBinary.Node{{Tag: "participants", Content: participants}},
	})
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	return info.snapshot(), nil
}

// recipientDevices resolves to into the linked devices a message goes to.
func (s *Server) recipientDevices(p *Phone, to types.JID) ([]types.JID, error) {
	if to.Server != types.DefaultUserServer || to.User == "" {
		return nil, fmt.Errorf("%w: %q", ErrBadJID, to.String())
	}
	if to.User == p.user {
		return nil, ErrOwnAccount
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []types.JID
	for jid, dev := range s.devices {
		if dev.removed || jid.User != to.User || (to.Device != 0 && jid.Device != to.Device) {
			continue
		}
		out = append(out, jid)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoRecipient, to)
	}
	slices.SortFunc(out, func(a, b types.JID) int { return int(a.Device) - int(b.Device) })
	return out, nil
}

// confirmSession is called when dev acknowledged a message from this phone.
func (p *Phone) confirmSession(dev types.JID) {
	p.messenger().peer.confirm(context.Background(), dev.SignalAddress())
}

// Sent lists the messages this phone sent, oldest first.
func (p *Phone) Sent() []SentMessage {
	s := p.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	return p.sentLocked()
}

func (p *Phone) sentLocked() []SentMessage {
	var out []SentMessage
	for _, info := range p.srv.messagingLocked().sent {
		if info.msg.From == p.JID().String() {
			out = append(out, info.snapshot())
		}
	}
	slices.SortFunc(out, func(a, b SentMessage) int { return a.SentAt.Compare(b.SentAt) })
	return out
}

// WaitSent waits until cond holds for the phone's sent messages.
func (p *Phone) WaitSent(ctx context.Context, cond func([]SentMessage) bool) ([]SentMessage, error) {
	return waitUntil(ctx, p.srv, p.sentLocked, cond)
}

// newMessageID has the shape of the ids WhatsApp clients generate
// (3EB0 + 16 hex digits, as whatsmeow.GenerateMessageID).
func newMessageID() types.MessageID {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "3EB0" + strings.ToUpper(hex.EncodeToString(b[:]))
}
