package fakewa

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
)

// decrypt opens a ciphertext a device sent the phone: "pkmsg" opens (or
// replaces) the session from one of the phone's own one-time pre-keys,
// "msg" uses the established session. The WhatsApp v2 padding is stripped.
// addr is the sending device's address in the form the phone itself uses
// for that device (its phone-number JID), so that a session the phone
// opened and one the device opened are the same record.
func (p *signalPeer) decrypt(ctx context.Context, addr *protocol.SignalAddress, encType string, ciphertext []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cipher := session.NewCipher(session.NewBuilderFromSignal(p.store, addr, serializer), addr)
	var plaintext []byte
	switch encType {
	case "pkmsg":
		msg, err := protocol.NewPreKeySignalMessageFromBytes(ciphertext, serializer.PreKeySignalMessage, serializer.SignalMessage)
		if err != nil {
			return nil, fmt.Errorf("parse pkmsg: %w", err)
		}
		if plaintext, err = cipher.DecryptMessage(ctx, msg); err != nil {
			return nil, fmt.Errorf("decrypt pkmsg from %s: %w", addr, err)
		}
	case "msg":
		msg, err := protocol.NewSignalMessageFromBytes(ciphertext, serializer.SignalMessage)
		if err != nil {
			return nil, fmt.Errorf("parse msg: %w", err)
		}
		if plaintext, err = cipher.Decrypt(ctx, msg); err != nil {
			return nil, fmt.Errorf("decrypt msg from %s: %w", addr, err)
		}
	default:
		return nil, fmt.Errorf("enc type %q is not emulated", encType)
	}
	return unpadMessage(plaintext)
}

// unpadMessage strips WhatsApp's v2 padding (padMessage's inverse).
func unpadMessage(plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 {
		return nil, errors.New("empty plaintext")
	}
	n := int(plaintext[len(plaintext)-1])
	if n == 0 || n > len(plaintext) {
		return nil, errors.New("bad padding")
	}
	for _, b := range plaintext[len(plaintext)-n:] {
		if int(b) != n {
			return nil, errors.New("bad padding")
		}
	}
	return plaintext[:len(plaintext)-n], nil
}
