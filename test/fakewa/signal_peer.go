package fakewa

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/util/keyhelper"
	"go.mau.fi/whatsmeow/util/keys"
)

// phonePreKeys is how many one-time pre-keys a fake phone publishes.
const phonePreKeys = 100

// signalPeer is a fake phone's end of its Signal sessions with linked
// devices of other accounts: the same libsignal code whatsmeow runs, with the
// phone's identity key and an in-memory store. It also publishes a pre-key
// bundle, so that a device can open a session towards the phone (the send
// path builds on that).
type signalPeer struct {
	mu     sync.Mutex // one encryption or decryption at a time
	store  *signalStore
	bundle *keyBundle
}

func newSignalPeer(idKey *keys.KeyPair) *signalPeer {
	regID := keyhelper.GenerateRegistrationID()
	id := identity.NewKeyPair(identity.NewKey(ecc.NewDjbECPublicKey(*idKey.Pub)), ecc.NewDjbECPrivateKey(*idKey.Priv))
	st := newSignalStore(id, regID)
	spk := idKey.CreateSignedPreKey(1)
	_ = st.StoreSignedPreKey(context.Background(), spk.KeyID, record.NewSignedPreKey(spk.KeyID, 0,
		ecc.NewECKeyPair(ecc.NewDjbECPublicKey(*spk.Pub), ecc.NewDjbECPrivateKey(*spk.Priv)), *spk.Signature, nil))
	b := &keyBundle{registrationID: regID, identity: *idKey.Pub, signedPreKey: spk}
	for i := uint32(1); i <= phonePreKeys; i++ {
		k := keys.NewPreKey(i)
		_ = st.StorePreKey(context.Background(), i, record.NewPreKey(i,
			ecc.NewECKeyPair(ecc.NewDjbECPublicKey(*k.Pub), ecc.NewDjbECPrivateKey(*k.Priv)), nil))
		b.preKeys = append(b.preKeys, k)
	}
	return &signalPeer{store: st, bundle: b}
}

// encrypt seals plaintext for addr, opening a session from a fetched bundle
// first if there is none. The result is "pkmsg" while the session is not yet
// confirmed by the other side, then "msg".
func (p *signalPeer) encrypt(ctx context.Context, addr *protocol.SignalAddress, fetch func() (*prekey.Bundle, error), plaintext []byte) (encType string, ciphertext []byte, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	builder := session.NewBuilderFromSignal(p.store, addr, serializer)
	has, _ := p.store.ContainsSession(ctx, addr)
	if !has {
		bundle, err := fetch()
		if err != nil {
			return "", nil, err
		}
		if err := builder.ProcessBundle(ctx, bundle); err != nil {
			return "", nil, fmt.Errorf("open session with %s: %w", addr, err)
		}
	}
	msg, err := session.NewCipher(builder, addr).Encrypt(ctx, plaintext)
	if err != nil {
		return "", nil, fmt.Errorf("encrypt for %s: %w", addr, err)
	}
	if msg.Type() == protocol.PREKEY_TYPE {
		return "pkmsg", msg.Serialize(), nil
	}
	return "msg", msg.Serialize(), nil
}

// confirm marks the session with addr as established on the other side (it
// acknowledged a pkmsg), so later messages are plain "msg", as a Signal
// sender does once the recipient has answered.
func (p *signalPeer) confirm(ctx context.Context, addr *protocol.SignalAddress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	has, _ := p.store.ContainsSession(ctx, addr)
	if !has {
		return
	}
	rec, err := p.store.LoadSession(ctx, addr)
	if err != nil || !rec.SessionState().HasUnacknowledgedPreKeyMessage() {
		return
	}
	rec.SessionState().ClearUnackPreKeyMessage()
	_ = p.store.StoreSession(ctx, addr, rec)
}

// padMessage adds WhatsApp's v2 padding (1-15 bytes, each the pad length),
// which whatsmeow checks and strips after decryption.
func padMessage(plaintext []byte) []byte {
	var b [1]byte
	_, _ = rand.Read(b[:])
	n := b[0] & 0x0f
	if n == 0 {
		n = 0x0f
	}
	out := make([]byte, len(plaintext), len(plaintext)+int(n))
	copy(out, plaintext)
	for range n {
		out = append(out, n)
	}
	return out
}
