package fakewa

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"strings"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"go.mau.fi/whatsmeow/util/keys"
	"golang.org/x/crypto/curve25519"
)

// linkCodeSession is a companion waiting for its pairing code to be typed
// on the phone (whatsmeow's PairPhone, stage companion_hello).
type linkCodeSession struct {
	reg              *registration
	ref              string
	wrappedEphemeral []byte // salt(32) ‖ iv(16) ‖ AES-CTR(code key, companion ephemeral pub)
	finish           chan *waBinary.Node
}

// Errors of the pairing-code flow.
var (
	ErrNoPendingCode = errors.New("fakewa: no client is waiting for a pairing code for this phone number")
	ErrWrongCode     = errors.New("fakewa: pairing code does not match (key bundle does not decrypt)")
)

// PairPhone codes are 8 characters of this alphabet (whatsmeow's linkingBase32).
var pairingCodePattern = regexp.MustCompile(`^[1-9A-HJ-NP-TV-Z]{8}$`)

// The real service only accepts "Browser (OS)" display names and answers 400
// otherwise; the fake checks the shape.
var displayNamePattern = regexp.MustCompile(`^[^()]+ \([^()]+\)$`)

// linkCodeIterations is whatsmeow's PBKDF2 work factor for the code key.
const linkCodeIterations = 2 << 16

func (c *conn) handleLinkCodeIQ(iq, stanza *waBinary.Node) {
	s := c.srv
	switch attrString(stanza, "stage") {
	case "companion_hello":
		jid, _ := stanza.Attrs["jid"].(types.JID)
		wrapped := childBytes(stanza, "link_code_pairing_wrapped_companion_ephemeral_pub")
		authKey := childBytes(stanza, "companion_server_auth_key_pub")
		display := string(childBytes(stanza, "companion_platform_display"))
		switch {
		case c.reg == nil:
			c.replyIQError(iq, 400, "bad-request")
		case jid.User == "" || len(wrapped) != 80 || string(authKey) != string(c.clientStatic[:]):
			c.replyIQError(iq, 400, "bad-request")
		case !displayNamePattern.MatchString(display):
			c.replyIQError(iq, 400, "bad-request")
		default:
			lc := &linkCodeSession{reg: c.reg, ref: newRef(), wrappedEphemeral: wrapped, finish: make(chan *waBinary.Node, 1)}
			s.mu.Lock()
			s.linkCodes[jid.User] = lc
			s.mu.Unlock()
			c.log.Info("pairing code requested", "phone", jid.User)
			c.replyIQ(iq, []waBinary.Node{{Tag: "link_code_companion_reg", Content: []waBinary.Node{
				{Tag: "link_code_pairing_ref", Content: []byte(lc.ref)},
			}}})
		}
	case "companion_finish":
		ref := string(childBytes(stanza, "link_code_pairing_ref"))
		var lc *linkCodeSession
		s.mu.Lock()
		for _, candidate := range s.linkCodes {
			if candidate.reg == c.reg && candidate.ref == ref {
				lc = candidate
			}
		}
		s.mu.Unlock()
		if lc == nil {
			c.replyIQError(iq, 404, "item-not-found")
			return
		}
		select {
		case lc.finish <- stanza:
		default:
		}
		c.replyIQ(iq, nil)
	default:
		c.replyIQError(iq, 400, "bad-request")
	}
}

// EnterCode types a pairing code (as PairPhone returned it, XXXX-XXXX) on
// the phone: it completes the link-code key exchange with the waiting
// client, derives the ADV secret from it and links the device as ScanQR does.
func (p *Phone) EnterCode(ctx context.Context, code string) (types.JID, error) {
	code = strings.ToUpper(strings.ReplaceAll(code, "-", ""))
	if !pairingCodePattern.MatchString(code) {
		return types.EmptyJID, fmt.Errorf("%w: malformed code", ErrWrongCode)
	}
	s := p.srv
	s.mu.Lock()
	lc := s.linkCodes[p.user]
	if lc == nil || lc.reg.conn.ended.Load() {
		s.mu.Unlock()
		return types.EmptyJID, ErrNoPendingCode
	}
	if lc.reg.pairing {
		s.mu.Unlock()
		return types.EmptyJID, ErrPairingBusy
	}
	lc.reg.pairing = true
	s.mu.Unlock()
	reg := lc.reg

	advSecret, err := p.linkCodeExchange(ctx, lc, code)
	if err != nil {
		s.releaseRegistration(reg)
		return types.EmptyJID, err
	}
	return s.completePairing(ctx, reg, p, advSecret)
}

// linkCodeExchange is the primary device's half of whatsmeow's pair-code.go.
func (p *Phone) linkCodeExchange(ctx context.Context, lc *linkCodeSession, code string) ([]byte, error) {
	companionEphemeral, err := codeCipher(code, lc.wrappedEphemeral[0:32], lc.wrappedEphemeral[32:48], lc.wrappedEphemeral[48:80])
	if err != nil {
		return nil, err
	}
	ephemeral := keys.NewKeyPair()
	salt, iv := make([]byte, 32), make([]byte, 16)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(iv)
	wrappedOwn, err := codeCipher(code, salt, iv, ephemeral.Pub[:])
	if err != nil {
		return nil, err
	}
	ephemeralShared, err := curve25519.X25519(ephemeral.Priv[:], companionEphemeral)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWrongCode, err)
	}

	err = lc.reg.conn.sendNode(waBinary.Node{
		Tag:   "notification",
		Attrs: waBinary.Attrs{"from": serverJID, "type": "link_code_companion_reg", "id": newID()},
		Content: []waBinary.Node{{Tag: "link_code_companion_reg", Attrs: waBinary.Attrs{"stage": "primary_hello"}, Content: []waBinary.Node{
			{Tag: "link_code_pairing_ref", Content: []byte(lc.ref)},
			{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: concat(salt, iv, wrappedOwn)},
			{Tag: "primary_identity_pub", Content: p.identity.Pub[:]},
		}}},
	})
	if err != nil {
		return nil, fmt.Errorf("sending primary_hello: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, p.srv.opts.PairReplyTimeout)
	defer cancel()
	var finish *waBinary.Node
	select {
	case finish = <-lc.finish:
	case <-lc.reg.conn.done:
		return nil, errConnClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for companion_finish: %w", ctx.Err())
	}
	bundle := childBytes(finish, "link_code_pairing_wrapped_key_bundle")
	if len(bundle) < 32+12+16 {
		return nil, errors.New("companion_finish: key bundle too short")
	}
	bundleKey := hkdfutil.SHA256(ephemeralShared, bundle[0:32], []byte("link_code_pairing_key_bundle_encryption_key"), 32)
	block, err := aes.NewCipher(bundleKey)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, bundle[32:44], bundle[44:], nil)
	if err != nil || len(plain) != 96 {
		return nil, ErrWrongCode
	}
	companionIdentity, primaryIdentity, advRandom := plain[0:32], plain[32:64], plain[64:96]
	if string(companionIdentity) != string(lc.reg.identityKey[:]) ||
		string(companionIdentity) != string(childBytes(finish, "companion_identity_public")) ||
		string(primaryIdentity) != string(p.identity.Pub[:]) {
		return nil, errors.New("companion_finish: key bundle names other identity keys")
	}
	identityShared, err := curve25519.X25519(p.identity.Priv[:], companionIdentity)
	if err != nil {
		return nil, err
	}
	return hkdfutil.SHA256(concat(ephemeralShared, identityShared, advRandom), nil, []byte("adv_secret"), 32), nil
}

// codeCipher is AES-256-CTR under PBKDF2(code, salt): it both wraps and
// unwraps an ephemeral public key.
func codeCipher(code string, salt, iv, data []byte) ([]byte, error) {
	key, err := pbkdf2.Key(sha256.New, code, salt, linkCodeIterations, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(data))
	cipher.NewCTR(block, iv).XORKeyStream(out, data)
	return out, nil
}
