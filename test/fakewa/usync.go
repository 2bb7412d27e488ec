package fakewa

import (
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// handleUsync answers whatsmeow's user-sync queries, which it makes before
// sending a message: GetUserInfo (mode "full": the account's LID and devices,
// to map a phone number to its LID) and GetUserDevices (mode "query": the
// devices to encrypt for).
//
// <iq xmlns=usync type=get><usync …><query><devices/><lid/>…</query>
// <list><user jid=…/>…</list></usync></iq> →
// <iq type=result><usync><list><user jid=…><devices><device-list><device id=0/>
// </device-list></devices><lid val=…/></user>…</list></usync></iq>
//
// Only fake phones are known accounts, and each lists its primary device
// (device 0) only: linked devices of the recipient account do not get copies
// of what a device sends (see README). An account the server does not know
// is answered with no LID and an empty device list, which makes whatsmeow's
// SendMessage fail ("no LID found"), as a number not on WhatsApp does.
func (c *conn) handleUsync(node *waBinary.Node) {
	usync, ok := node.GetOptionalChildByTag("usync")
	if !ok || attrString(node, "type") != "get" {
		c.replyIQError(node, 400, "bad-request")
		return
	}
	query, _ := usync.GetOptionalChildByTag("query")
	list, _ := usync.GetOptionalChildByTag("list")
	wantDevices, wantLID := false, false
	for _, q := range query.GetChildren() {
		switch q.Tag {
		case "devices":
			wantDevices = true
		case "lid":
			wantLID = true
		}
	}
	var users []waBinary.Node
	for _, u := range list.GetChildrenByTag("user") {
		jid, ok := u.Attrs["jid"].(types.JID)
		if !ok {
			continue
		}
		p := c.srv.phoneByJID(jid)
		entry := waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}}
		var content []waBinary.Node
		if wantDevices {
			var devs []waBinary.Node
			if p != nil {
				// The phone publishes its pre-keys now, so the device can
				// open a Signal session with it.
				p.messenger()
				devs = append(devs, waBinary.Node{Tag: "device", Attrs: waBinary.Attrs{"id": "0"}})
			}
			content = append(content, waBinary.Node{Tag: "devices", Content: []waBinary.Node{{Tag: "device-list", Content: devs}}})
		}
		if wantLID && p != nil && jid.Server == types.DefaultUserServer {
			content = append(content, waBinary.Node{Tag: "lid", Attrs: waBinary.Attrs{"val": p.LID()}})
		}
		if content != nil {
			entry.Content = content
		}
		users = append(users, entry)
	}
	c.replyIQ(node, []waBinary.Node{{Tag: "usync", Content: []waBinary.Node{{Tag: "list", Content: users}}}})
}

// phoneByJID finds the fake phone an account JID (phone number or LID, any
// device) belongs to; nil when no such phone exists.
func (s *Server) phoneByJID(jid types.JID) *Phone {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch jid.Server {
	case types.DefaultUserServer:
		return s.phones[jid.User]
	case types.HiddenUserServer:
		for _, p := range s.phones {
			if p.lidUser == jid.User {
				return p
			}
		}
	}
	return nil
}
