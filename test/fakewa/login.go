package fakewa

import (
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// afterHandshake decides what the connection is: a ClientPayload without a
// username registers a new device (pairing window), one with a username logs
// in a paired device.
func (s *Server) afterHandshake(c *conn) {
	s.mu.Lock()
	s.totals.Handshakes++
	s.bump()
	s.mu.Unlock()
	if c.payload.Username == nil {
		c.log.Debug("registration connection")
		s.startPairingWindow(c)
		return
	}
	s.login(c)
}

// login accepts or rejects a paired device's connection. An accepted login
// first ends any live connection of the same device with conflict/replaced,
// then becomes live: the accounting never holds both.
func (s *Server) login(c *conn) {
	jid := types.JID{
		User:   strconv.FormatUint(c.payload.GetUsername(), 10),
		Device: uint16(c.payload.GetDevice()),
		Server: types.DefaultUserServer,
	}
	s.mu.Lock()
	dev := s.devices[jid]
	if dev == nil || dev.removed || dev.noiseKey != c.clientStatic {
		// Unknown or unlinked keys: the real service answers 401, and
		// whatsmeow then wipes its store (LoggedOut on connect).
		if dev != nil {
			dev.ledger.rejected++
			s.record(&dev.ledger, Event{Kind: EventLoginRejected, Device: jid.String(), ConnID: c.id, Reason: "401"})
		}
		s.mu.Unlock()
		c.log.Info("login rejected: device unknown or removed", "device", jid)
		c.endWith(failureNode(LoginFailure{Reason: 401}))
		return
	}
	if f, ok := s.takeLoginFailureLocked(jid); ok {
		dev.ledger.rejected++
		s.record(&dev.ledger, Event{Kind: EventLoginRejected, Device: jid.String(), ConnID: c.id, Reason: strconv.Itoa(f.Reason)})
		s.mu.Unlock()
		c.log.Info("login rejected on request", "device", jid, "reason", f.Reason)
		c.endWith(failureNode(f))
		return
	}
	var replaced []*conn
	for _, old := range dev.conns {
		replaced = append(replaced, old)
		s.endLiveLocked(old, ReasonReplaced)
		delete(dev.conns, old.id)
		dev.ledger.replacements++
	}
	c.device = dev
	c.live = true
	dev.conns[c.id] = c
	dev.ledger.live++
	dev.ledger.maxLive = max(dev.ledger.maxLive, dev.ledger.live)
	dev.ledger.logins++
	s.totals.Logins++
	s.record(&dev.ledger, Event{Kind: EventConnected, Device: jid.String(), ConnID: c.id})
	lid := dev.lid
	s.mu.Unlock()

	for _, old := range replaced {
		old.log.Info("connection replaced by a newer login", "device", jid, "by", c.id)
		old.endWith(waBinary.Node{Tag: "stream:error", Content: []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": "replaced"}}}})
	}
	c.log.Info("login accepted", "device", jid)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	if err := c.sendNode(waBinary.Node{Tag: "success", Attrs: waBinary.Attrs{
		"t": now, "lid": lid, "props": "1", "location": "lla", "creation": now,
	}}); err != nil {
		c.log.Debug("sending success failed", "err", err)
		return
	}
	s.deliverOffline(c)
}

// handleNode answers what the client sends after the handshake.
func (c *conn) handleNode(node *waBinary.Node) {
	switch node.Tag {
	case "iq":
		c.handleIQ(node)
	case "receipt":
		c.handleReceipt(node)
	case "ack":
		c.handleMessageAck(node)
		c.handleReceiptAck(node)
	case "message":
		c.handleDeviceMessage(node)
	case "presence", "chatstate":
		// Nothing the fake needs to act on.
	default:
		c.log.Debug("ignoring node", "tag", node.Tag)
	}
}

func (c *conn) handleIQ(node *waBinary.Node) {
	typ := attrString(node, "type")
	if typ == "result" || typ == "error" {
		if !c.deliverReply(node) {
			c.log.Debug("unsolicited iq reply", "id", attrString(node, "id"))
		}
		return
	}
	switch attrString(node, "xmlns") {
	case "w:p":
		c.srv.countPing(c)
		c.replyIQ(node, nil)
	case "encrypt":
		c.handleEncryptIQ(node)
	case "md":
		c.handleMDIQ(node)
	case "usync":
		c.handleUsync(node)
	default:
		// passive/active and the rest: an empty result keeps the client
		// going; anything that needs real content is out of scope.
		c.replyIQ(node, nil)
	}
}

func (c *conn) replyIQ(req *waBinary.Node, content []waBinary.Node) {
	reply := waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"from": serverJID, "type": "result", "id": attrString(req, "id")}}
	if content != nil {
		reply.Content = content
	}
	if err := c.sendNode(reply); err != nil {
		c.log.Debug("sending iq result failed", "err", err)
	}
}

func (c *conn) replyIQError(req *waBinary.Node, code int, text string) {
	err := c.sendNode(waBinary.Node{
		Tag:     "iq",
		Attrs:   waBinary.Attrs{"from": serverJID, "type": "error", "id": attrString(req, "id")},
		Content: []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": strconv.Itoa(code), "text": text}}},
	})
	if err != nil {
		c.log.Debug("sending iq error failed", "err", err)
	}
}

// handleEncryptIQ serves the pre-key directory: the count the client reads
// after login (what it uploaded minus what others fetched, so the first login
// uploads and later ones don't), the upload itself, and fetches of other
// devices' bundles (messaging_keys.go).
func (c *conn) handleEncryptIQ(node *waBinary.Node) {
	s := c.srv
	if _, ok := node.GetOptionalChildByTag("count"); ok {
		s.mu.Lock()
		count := 0
		if c.device != nil {
			count = c.device.ledger.preKeys
		}
		s.mu.Unlock()
		c.replyIQ(node, []waBinary.Node{{Tag: "count", Attrs: waBinary.Attrs{"value": strconv.Itoa(count)}}})
		return
	}
	if _, ok := node.GetOptionalChildByTag("list"); ok && c.device != nil {
		if _, err := s.storeUploadedKeys(c.device, node); err != nil {
			c.log.Warn("bad pre-key upload", "err", err)
			c.replyIQError(node, 400, "bad-request")
			return
		}
	}
	if keyNode, ok := node.GetOptionalChildByTag("key"); ok && attrString(node, "type") == "get" {
		c.replyIQ(node, s.answerKeyFetch(&keyNode))
		return
	}
	c.replyIQ(node, nil)
}

func (c *conn) handleMDIQ(node *waBinary.Node) {
	children := node.GetChildren()
	if len(children) == 1 {
		switch children[0].Tag {
		case "link_code_companion_reg":
			c.handleLinkCodeIQ(node, &children[0])
			return
		case "remove-companion-device":
			c.srv.logoutFromClient(c)
			c.replyIQ(node, nil)
			return
		}
	}
	c.replyIQ(node, nil)
}

func (s *Server) countPing(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.device != nil {
		c.device.ledger.pings++
		s.bump()
	}
}
