package fakewa

import (
	"context"
	"slices"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// inbound is the device → phone direction: what the fake phones received
// from linked devices, and the receipts they owe those devices. Guarded by
// Server.mu.
type inbound struct {
	received map[*Phone]*phoneInbox
	receipts map[types.JID]*receiptQueue // by device JID
}

type phoneInbox struct {
	list            []*ReceivedMessage
	byKey           map[string]*ReceivedMessage // chat + "/" + id
	decryptFailures int
}

// receiptQueue holds the receipts a device has not acknowledged yet, in the
// order the phones sent them: they are written to its live connection and
// written again on its next login until it answers <ack class="receipt">,
// as the real service keeps receipts for an offline device.
type receiptQueue = stanzaQueue[*queuedReceipt]

type queuedReceipt struct {
	queuedStanza
	typ string // "" delivery, "read"
}

// ReceivedMessage is one message a phone received from a linked device and
// decrypted, recorded once per (chat, id) however often it arrived.
type ReceivedMessage struct {
	ID types.MessageID `json:"id"`
	// Chat is the other account (phone-number JID): the sender's account,
	// or, for FromMe copies, the account the phone's own device wrote to.
	Chat string `json:"chat"`
	// From is the sending device (phone-number device JID).
	From string `json:"from"`
	// FromMe marks the copy a phone gets of what one of its own linked
	// devices sent to someone else (WhatsApp's DeviceSentMessage).
	FromMe     bool      `json:"fromMe,omitempty"`
	Text       string    `json:"text"`
	Encryption string    `json:"encryption"` // pkmsg or msg, as first received
	ReceivedAt time.Time `json:"receivedAt"`
	// Copies counts how often the server handed the phone this message (a
	// sender that retries with the same id makes it more than 1; the text
	// is still recorded once).
	Copies int        `json:"copies"`
	ReadAt *time.Time `json:"readAt,omitempty"`

	device    types.JID // sender device, where receipts go
	addressed types.JID // the JID the device addressed this phone as (receipts come from it)
}

// PhoneInboxStats counts what a phone could not use.
type PhoneInboxStats struct {
	DecryptFailures int `json:"decryptFailures"`
}

func (s *Server) inboundLocked() *inbound {
	if s.in == nil {
		s.in = &inbound{received: map[*Phone]*phoneInbox{}, receipts: map[types.JID]*receiptQueue{}}
	}
	return s.in
}

func (s *Server) phoneInboxLocked(p *Phone) *phoneInbox {
	in := s.inboundLocked()
	pi := in.received[p]
	if pi == nil {
		pi = &phoneInbox{byKey: map[string]*ReceivedMessage{}}
		in.received[p] = pi
	}
	return pi
}

func (s *Server) receiptQueueLocked(dev types.JID) *receiptQueue {
	in := s.inboundLocked()
	q := in.receipts[dev]
	if q == nil {
		q = &receiptQueue{}
		in.receipts[dev] = q
	}
	return q
}

// handleDeviceMessage takes a message a linked device sends:
// <message id to type><participants><to jid=device><enc v type/></to>…
// </participants>[<device-identity/>]</message>. The server acknowledges it
// with <ack class="message" id t from=to> (which ends whatsmeow's
// SendMessage), then hands each fake phone's ciphertext to that phone, which
// decrypts it, records it and answers with a delivery receipt. Ciphertexts
// for devices other than a phone's primary device are not routed (the
// server lists only primary devices in usync, so whatsmeow sends none).
func (c *conn) handleDeviceMessage(node *waBinary.Node) {
	if c.device == nil {
		return
	}
	id := attrString(node, "id")
	to, _ := node.Attrs["to"].(types.JID)
	participants, ok := node.GetOptionalChildByTag("participants")
	ack := waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{
		"class": "message", "id": id, "t": strconv.FormatInt(time.Now().Unix(), 10),
	}}
	if !to.IsEmpty() {
		ack.Attrs["from"] = to
	}
	if id == "" || to.IsEmpty() || !ok {
		ack.Attrs["error"] = "400"
		_ = c.sendNode(ack)
		return
	}
	if c.srv.phoneByJID(to) == nil {
		ack.Attrs["error"] = "404"
		_ = c.sendNode(ack)
		return
	}
	if err := c.sendNode(ack); err != nil {
		c.log.Debug("sending message ack failed", "err", err)
	}
	for _, child := range participants.GetChildrenByTag("to") {
		jid, _ := child.Attrs["jid"].(types.JID)
		p := c.srv.phoneByJID(jid)
		enc, hasEnc := child.GetOptionalChildByTag("enc")
		if p == nil || jid.Device != 0 || !hasEnc {
			continue
		}
		p.receiveFromDevice(c.device, to.ToNonAD(), id, &enc)
	}
}

// receiveFromDevice is the phone decrypting one ciphertext from a linked
// device and answering with a delivery receipt (not for copies of its own
// devices' messages).
func (p *Phone) receiveFromDevice(dev *deviceRecord, addressed types.JID, id types.MessageID, enc *waBinary.Node) {
	s := p.srv
	encType := attrString(enc, "type")
	ciphertext, _ := enc.Content.([]byte)
	plaintext, err := p.messenger().peer.decrypt(s.ctx, dev.jid.SignalAddress(), encType, ciphertext)
	var msg waE2E.Message
	if err == nil {
		err = proto.Unmarshal(plaintext, &msg)
	}
	if err != nil {
		s.log.Warn("phone could not decrypt a device's message", "phone", p.user, "device", dev.jid, "id", id, "err", err)
		s.mu.Lock()
		s.phoneInboxLocked(p).decryptFailures++
		s.bump()
		s.mu.Unlock()
		return
	}
	fromMe := dev.phone == p
	chat := dev.phone.JID()
	content := &msg
	if fromMe {
		dsm := msg.GetDeviceSentMessage()
		content = dsm.GetMessage()
		chat = types.EmptyJID
		if dest, err := types.ParseJID(dsm.GetDestinationJID()); err == nil {
			if other := s.phoneByJID(dest); other != nil {
				chat = other.JID()
			} else {
				chat = dest.ToNonAD()
			}
		}
	}
	text := content.GetConversation()
	if text == "" {
		text = content.GetExtendedTextMessage().GetText()
	}

	now := time.Now()
	s.mu.Lock()
	pi := s.phoneInboxLocked(p)
	key := chat.String() + "/" + id
	if rm := pi.byKey[key]; rm != nil {
		rm.Copies++
	} else {
		rm = &ReceivedMessage{
			ID: id, Chat: chat.String(), From: dev.jid.String(), FromMe: fromMe, Text: text,
			Encryption: encType, ReceivedAt: now, Copies: 1, device: dev.jid, addressed: addressed,
		}
		pi.byKey[key] = rm
		pi.list = append(pi.list, rm)
	}
	if !fromMe {
		s.queueReceiptLocked(dev.jid, addressed, id, "", now)
	}
	s.bump()
	s.mu.Unlock()
	if !fromMe {
		s.pumpReceipts(dev)
	}
}

func (s *Server) queueReceiptLocked(dev, from types.JID, id types.MessageID, typ string, at time.Time) {
	node := waBinary.Node{Tag: "receipt", Attrs: waBinary.Attrs{
		"from": from, "id": id, "t": strconv.FormatInt(at.Unix(), 10),
	}}
	if typ != "" {
		node.Attrs["type"] = typ
	}
	q := s.receiptQueueLocked(dev)
	q.pending = append(q.pending, &queuedReceipt{queuedStanza: queuedStanza{id: id, node: node}, typ: typ})
}

// pumpReceipts writes, in queue order, the receipts dev's live connection
// has not had yet.
func (s *Server) pumpReceipts(dev *deviceRecord) {
	s.mu.Lock()
	q := s.receiptQueueLocked(dev.jid)
	s.mu.Unlock()
	pumpQueue(s, dev, q, "receipt", nil)
}

// handleReceiptAck removes the receipt a device acknowledged with
// <ack class="receipt" id [type]>.
func (c *conn) handleReceiptAck(node *waBinary.Node) {
	if c.device == nil || attrString(node, "class") != "receipt" {
		return
	}
	id, typ := attrString(node, "id"), attrString(node, "type")
	s := c.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.receiptQueueLocked(c.device.jid)
	q.pending = slices.DeleteFunc(q.pending, func(r *queuedReceipt) bool { return r.id == id && r.typ == typ })
	s.bump()
}

// Received lists what the phone received from linked devices, in the order
// it first received each message.
func (p *Phone) Received() []ReceivedMessage {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	return p.receivedLocked()
}

func (p *Phone) receivedLocked() []ReceivedMessage {
	pi := p.srv.phoneInboxLocked(p)
	out := make([]ReceivedMessage, len(pi.list))
	for i, rm := range pi.list {
		out[i] = *rm
	}
	return out
}

// InboxStats returns what the phone could not decrypt.
func (p *Phone) InboxStats() PhoneInboxStats {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	return PhoneInboxStats{DecryptFailures: p.srv.phoneInboxLocked(p).decryptFailures}
}

// WaitReceived waits until cond holds for the phone's received messages.
func (p *Phone) WaitReceived(ctx context.Context, cond func([]ReceivedMessage) bool) ([]ReceivedMessage, error) {
	return waitUntil(ctx, p.srv, p.receivedLocked, cond)
}

// MarkRead has the phone read messages it received (all unread ones when
// ids is empty): each gets its read time and the sending device a read
// receipt (queued if it is offline). It returns how many were newly read.
func (p *Phone) MarkRead(ids ...types.MessageID) int {
	s := p.srv
	now := time.Now()
	var devices []types.JID
	s.mu.Lock()
	n := 0
	for _, rm := range s.phoneInboxLocked(p).list {
		if rm.FromMe || rm.ReadAt != nil || (len(ids) > 0 && !slices.Contains(ids, rm.ID)) {
			continue
		}
		at := now
		rm.ReadAt = &at
		s.queueReceiptLocked(rm.device, rm.addressed, rm.ID, "read", now)
		if !slices.Contains(devices, rm.device) {
			devices = append(devices, rm.device)
		}
		n++
	}
	var records []*deviceRecord
	for _, jid := range devices {
		if dev := s.devices[jid]; dev != nil {
			records = append(records, dev)
		}
	}
	s.bump()
	s.mu.Unlock()
	for _, dev := range records {
		s.pumpReceipts(dev)
	}
	return n
}
