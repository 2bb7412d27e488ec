package fakewa

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/util/optional"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// keyBundle is what one device published for others to open Signal sessions
// with it: the server's pre-key directory entry. One-time pre-keys are handed
// out oldest first and each only once, as the real service does; when none is
// left a fetch returns the signed pre-key alone.
type keyBundle struct {
	registrationID uint32
	identity       [32]byte
	signedPreKey   *keys.PreKey
	preKeys        []*keys.PreKey
}

// ErrNoPreKeys means the recipient device never uploaded its keys (it has
// not logged in since pairing), so no one can encrypt to it yet.
var ErrNoPreKeys = errors.New("fakewa: the device has not uploaded its pre-keys yet")

// storeUploadedKeys keeps what whatsmeow's uploadPreKeys sends:
// <registration>, <type>, <identity>, <list><key><id/><value/></key>…</list>,
// <skey><id/><value/><signature/></skey>. It returns how many one-time keys
// were added.
func (s *Server) storeUploadedKeys(dev *deviceRecord, node *waBinary.Node) (int, error) {
	reg := childBytes(node, "registration")
	ident := childBytes(node, "identity")
	if len(reg) != 4 || len(ident) != 32 {
		return 0, errors.New("pre-key upload without a 4-byte registration id or 32-byte identity")
	}
	skeyNode, ok := node.GetOptionalChildByTag("skey")
	if !ok {
		return 0, errors.New("pre-key upload without a signed pre-key")
	}
	skey, err := parsePreKeyNode(&skeyNode, true)
	if err != nil {
		return 0, fmt.Errorf("signed pre-key: %w", err)
	}
	list, _ := node.GetOptionalChildByTag("list")
	var added []*keys.PreKey
	for _, child := range list.GetChildren() {
		k, err := parsePreKeyNode(&child, false)
		if err != nil {
			return 0, fmt.Errorf("pre-key: %w", err)
		}
		added = append(added, k)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.messagingLocked()
	b := m.keys[dev.jid]
	if b == nil {
		b = &keyBundle{}
		m.keys[dev.jid] = b
		if !dev.lid.IsEmpty() {
			m.keys[dev.lid] = b
		}
	}
	b.registrationID = binary.BigEndian.Uint32(reg)
	b.identity = [32]byte(ident)
	b.signedPreKey = skey
	b.preKeys = append(b.preKeys, added...)
	dev.ledger.preKeys += len(added)
	s.bump()
	return len(added), nil
}

func parsePreKeyNode(node *waBinary.Node, signed bool) (*keys.PreKey, error) {
	id := childBytes(node, "id")
	pub := childBytes(node, "value")
	if len(id) != 3 || len(pub) != 32 {
		return nil, errors.New("want a 3-byte id and a 32-byte value")
	}
	k := &keys.PreKey{KeyID: binary.BigEndian.Uint32(append([]byte{0}, id...))}
	k.Pub = (*[32]byte)(pub)
	if signed {
		sig := childBytes(node, "signature")
		if len(sig) != 64 {
			return nil, errors.New("want a 64-byte signature")
		}
		k.Signature = (*[64]byte)(sig)
	}
	return k, nil
}

// publishKeysLocked registers a bundle under each of the JIDs it answers to
// (the fake phones publish their own this way).
func (s *Server) publishKeysLocked(b *keyBundle, jids ...types.JID) {
	m := s.messagingLocked()
	for _, jid := range jids {
		m.keys[jid] = b
	}
}

// takeKeys hands out jid's bundle with its oldest one-time pre-key, which is
// then gone from the directory (and from the device's count, so whatsmeow
// uploads more when it runs low).
func (s *Server) takeKeys(jid types.JID) (keyBundle, *keys.PreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.messagingLocked().keys[jid]
	if b == nil {
		return keyBundle{}, nil, ErrNoPreKeys
	}
	var one *keys.PreKey
	if len(b.preKeys) > 0 {
		one = b.preKeys[0]
		b.preKeys = b.preKeys[1:]
		for _, dev := range s.devices {
			if dev.jid == jid || dev.lid == jid {
				dev.ledger.preKeys--
			}
		}
		s.bump()
	}
	return *b, one, nil
}

// takeBundle is takeKeys in libsignal's form, for the fake phones.
func (s *Server) takeBundle(jid types.JID) (*prekey.Bundle, error) {
	b, one, err := s.takeKeys(jid)
	if err != nil {
		return nil, err
	}
	idKey := identity.NewKey(ecc.NewDjbECPublicKey(b.identity))
	spk := b.signedPreKey
	if one == nil {
		return prekey.NewBundle(b.registrationID, uint32(jid.Device), optional.NewEmptyUint32(), spk.KeyID,
			nil, ecc.NewDjbECPublicKey(*spk.Pub), *spk.Signature, idKey), nil
	}
	return prekey.NewBundle(b.registrationID, uint32(jid.Device), optional.NewOptionalUint32(one.KeyID), spk.KeyID,
		ecc.NewDjbECPublicKey(*one.Pub), ecc.NewDjbECPublicKey(*spk.Pub), *spk.Signature, idKey), nil
}

// answerKeyFetch serves whatsmeow's fetchPreKeys:
// <iq type=get xmlns=encrypt><key><user jid=…/>…</key></iq> →
// <list><user jid=…><registration/><type/><identity/><key/>?<skey/></user>…</list>,
// a user without keys answered with <error code=404>.
func (s *Server) answerKeyFetch(keyNode *waBinary.Node) []waBinary.Node {
	var users []waBinary.Node
	for _, u := range keyNode.GetChildrenByTag("user") {
		jid, ok := u.Attrs["jid"].(types.JID)
		if !ok {
			continue
		}
		entry := waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}}
		b, one, err := s.takeKeys(jid)
		if err != nil {
			entry.Content = []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "404", "text": "item-not-found"}}}
			users = append(users, entry)
			continue
		}
		var reg [4]byte
		binary.BigEndian.PutUint32(reg[:], b.registrationID)
		content := []waBinary.Node{
			{Tag: "registration", Content: reg[:]},
			{Tag: "type", Content: []byte{ecc.DjbType}},
			{Tag: "identity", Content: b.identity[:]},
		}
		if one != nil {
			content = append(content, preKeyNode("key", one))
		}
		entry.Content = append(content, preKeyNode("skey", b.signedPreKey))
		users = append(users, entry)
	}
	return []waBinary.Node{{Tag: "list", Content: users}}
}

func preKeyNode(tag string, k *keys.PreKey) waBinary.Node {
	var raw [4]byte
	binary.BigEndian.PutUint32(raw[:], k.KeyID)
	content := []waBinary.Node{{Tag: "id", Content: raw[1:]}, {Tag: "value", Content: k.Pub[:]}}
	if k.Signature != nil {
		content = append(content, waBinary.Node{Tag: "signature", Content: k.Signature[:]})
	}
	return waBinary.Node{Tag: tag, Content: content}
}
