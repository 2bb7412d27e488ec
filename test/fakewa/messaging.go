package fakewa

import (
	"context"
	"slices"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// messaging is the server's message-routing state, guarded by Server.mu.
type messaging struct {
	keys      map[types.JID]*keyBundle      // pre-key directory, by device JID (PN and LID)
	mailboxes map[types.JID]*mailbox        // per linked device
	sent      map[types.MessageID]*sentInfo // every phone message, by id
}

// messagingLocked returns the routing state, creating it on first use.
func (s *Server) messagingLocked() *messaging {
	if s.msg == nil {
		s.msg = &messaging{
			keys:      map[types.JID]*keyBundle{},
			mailboxes: map[types.JID]*mailbox{},
			sent:      map[types.MessageID]*sentInfo{},
		}
	}
	return s.msg
}

// mailbox is one device's offline queue: every message routed to the
// device stays here, in order, until the device acknowledges it with a
// delivery receipt or an ack. Whatever was written to a connection that
// ended without that acknowledgement is written again on the next login,
// as the real service redelivers.
type mailbox struct {
	stanzaQueue[*queuedMessage]
	stats MailboxStats // guarded by Server.mu
}

type queuedMessage struct {
	queuedStanza
	from *Phone
}

// MailboxStats counts one device's incoming message traffic.
type MailboxStats struct {
	// Pending messages are routed to the device and not yet acknowledged.
	Pending int `json:"pending"`
	// Routed counts messages ever queued for the device.
	Routed int `json:"routed"`
	// Writes counts message stanzas written to its connections; Redeliveries
	// the writes of a message already written to an earlier connection.
	Writes       int `json:"writes"`
	Redeliveries int `json:"redeliveries"`
	// Receipts the device sent, by type: "delivery" (no type or inactive),
	// "read", "retry" and any other type under its own name.
	Receipts map[string]int `json:"receipts,omitempty"`
	// Acks counts <ack class="message"> from the device; Nacks those with an
	// error code.
	Acks  int `json:"acks"`
	Nacks int `json:"nacks"`
}

func (s *Server) mailboxLocked(jid types.JID) *mailbox {
	m := s.messagingLocked()
	mb := m.mailboxes[jid]
	if mb == nil {
		mb = &mailbox{stats: MailboxStats{Receipts: map[string]int{}}}
		m.mailboxes[jid] = mb
	}
	return mb
}

// Mailbox returns a snapshot of the device's message counters.
func (d *Device) Mailbox() MailboxStats {
	d.srv.mu.Lock()
	defer d.srv.mu.Unlock()
	return d.mailboxLocked()
}

func (d *Device) mailboxLocked() MailboxStats {
	mb := d.srv.mailboxLocked(d.jid)
	st := mb.stats
	st.Pending = len(mb.pending)
	st.Receipts = make(map[string]int, len(mb.stats.Receipts))
	for k, v := range mb.stats.Receipts {
		st.Receipts[k] = v
	}
	return st
}

// routeFromPhone splits a phone's fanout stanza
// <message id to type><participants><to jid=device><enc/></to>…</participants></message>
// into one <message from id t type notify sender_lid><enc/></message> per
// recipient device, queues each in the device's mailbox and writes it to
// the device's live connection, if any. A message in a group chat comes
// <message from=group participant=phone participant_lid id t type notify>.
func (s *Server) routeFromPhone(p *Phone, group types.JID, stanza waBinary.Node) {
	id := attrString(&stanza, "id")
	typ := attrString(&stanza, "type")
	now := strconv.FormatInt(time.Now().Unix(), 10)
	participants, _ := stanza.GetOptionalChildByTag("participants")
	var targets []*deviceRecord
	s.mu.Lock()
	for _, to := range participants.GetChildrenByTag("to") {
		jid, _ := to.Attrs["jid"].(types.JID)
		dev := s.devices[jid]
		if dev == nil || dev.removed {
			continue
		}
		node := waBinary.Node{
			Tag: "message",
			Attrs: waBinary.Attrs{
				"from": p.JID(), "id": id, "t": now, "type": typ,
				"notify": p.pushName(), "sender_lid": p.LID(),
			},
			Content: to.GetChildren(),
		}
		if !group.IsEmpty() {
			delete(node.Attrs, "sender_lid")
			node.Attrs["from"], node.Attrs["participant"], node.Attrs["participant_lid"] = group, p.JID(), p.LID()
		}
		mb := s.mailboxLocked(jid)
		mb.pending = append(mb.pending, &queuedMessage{queuedStanza: queuedStanza{id: id, node: node}, from: p})
		mb.stats.Routed++
		targets = append(targets, dev)
	}
	s.bump()
	s.mu.Unlock()
	for _, dev := range targets {
		s.pump(dev)
	}
}

// pump writes, in queue order, every pending message of dev that its live
// connection has not had yet. It returns how many it wrote.
func (s *Server) pump(dev *deviceRecord) int {
	s.mu.Lock()
	mb := s.mailboxLocked(dev.jid)
	s.mu.Unlock()
	return pumpQueue(s, dev, &mb.stanzaQueue, "message", func(redelivery bool) {
		if redelivery {
			mb.stats.Redeliveries++
		}
		mb.stats.Writes++
		s.bump()
	})
}

// deliverOffline runs right after a login's <success>: the device gets what
// queued up while it was away (and what it never acknowledged), then
// <ib><offline count/></ib>, which whatsmeow reports as OfflineSyncCompleted.
func (s *Server) deliverOffline(c *conn) {
	n := s.pump(c.device)
	s.pumpReceipts(c.device)
	err := c.sendNode(waBinary.Node{Tag: "ib", Content: []waBinary.Node{{Tag: "offline", Attrs: waBinary.Attrs{"count": strconv.Itoa(n)}}}})
	if err != nil {
		c.log.Debug("sending offline marker failed", "err", err)
	}
}

// handleReceipt records a device's <receipt>. A delivery receipt (no type,
// or "inactive") acknowledges the messages it names: they leave the mailbox
// and the sending phone learns they were delivered. "read" marks them read;
// "retry" (the device could not decrypt) is counted.
func (c *conn) handleReceipt(node *waBinary.Node) {
	if c.device == nil {
		return
	}
	typ := attrString(node, "type")
	kind := typ
	if typ == "" || typ == "inactive" {
		kind = "delivery"
	}
	ids := []types.MessageID{attrString(node, "id")}
	if list, ok := node.GetOptionalChildByTag("list"); ok {
		for _, item := range list.GetChildrenByTag("item") {
			ids = append(ids, attrString(&item, "id"))
		}
	}
	s := c.srv
	now := time.Now()
	var confirmed []*queuedMessage
	s.mu.Lock()
	mb := s.mailboxLocked(c.device.jid)
	mb.stats.Receipts[kind] += len(ids)
	for _, id := range ids {
		if kind == "delivery" {
			if q := mb.removeLocked(id); q != nil {
				confirmed = append(confirmed, q)
			}
		}
		if info := s.messagingLocked().sent[id]; info != nil {
			info.noteReceipt(c.device.jid, kind, now)
		}
	}
	s.bump()
	s.mu.Unlock()
	for _, q := range confirmed {
		q.from.confirmSession(c.device.jid)
	}
	c.sendNode(waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{"class": "receipt", "id": ids[0], "from": c.device.jid}}) //nolint:errcheck // best effort, as the real service
}

// handleMessageAck records <ack class="message" id [error]>: the device is
// done with that message (it failed to use it, or, with an error, rejected
// it), so it leaves the mailbox either way.
func (c *conn) handleMessageAck(node *waBinary.Node) {
	if c.device == nil || attrString(node, "class") != "message" {
		return
	}
	id := attrString(node, "id")
	s := c.srv
	s.mu.Lock()
	mb := s.mailboxLocked(c.device.jid)
	mb.stats.Acks++
	if attrString(node, "error") != "" {
		mb.stats.Nacks++
	}
	mb.removeLocked(id)
	if info := s.messagingLocked().sent[id]; info != nil {
		info.noteAck(c.device.jid, attrString(node, "error"))
	}
	s.bump()
	s.mu.Unlock()
}

func (mb *mailbox) removeLocked(id types.MessageID) *queuedMessage {
	i := slices.IndexFunc(mb.pending, func(q *queuedMessage) bool { return q.id == id })
	if i < 0 {
		return nil
	}
	q := mb.pending[i]
	mb.pending = slices.Delete(mb.pending, i, i+1)
	return q
}

// WaitMailbox waits until cond holds for the device's mailbox counters.
func (d *Device) WaitMailbox(ctx context.Context, cond func(MailboxStats) bool) (MailboxStats, error) {
	return waitUntil(ctx, d.srv, d.mailboxLocked, cond)
}
