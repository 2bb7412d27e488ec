package fakewa

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

// Phone is the primary device of one account: it owns the account signing
// key that vouches for linked devices, and links them by scanning a QR code
// or by entering a pairing code.
type Phone struct {
	srv      *Server
	user     string // digits of the phone number
	lidUser  string
	platform string
	account  *keys.KeyPair // signs ADVDeviceIdentity
	identity *keys.KeyPair // the phone's own identity key (link-code flow)

	nextDevice uint16          // guarded by srv.mu
	msgr       *phoneMessenger // guarded by srv.mu; created on first send
}

var notDigits = regexp.MustCompile(`[^0-9]`)

// Phone returns the fake phone for a number (any format; digits are kept),
// creating it with fresh keys on first use.
func (s *Server) Phone(number string) *Phone {
	user := notDigits.ReplaceAllString(number, "")
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.phones[user]; p != nil {
		return p
	}
	s.nextLIDUser++
	p := &Phone{
		srv:      s,
		user:     user,
		lidUser:  strconv.FormatUint(s.nextLIDUser, 10),
		platform: "android",
		account:  keys.NewKeyPair(),
		identity: keys.NewKeyPair(),
	}
	s.phones[user] = p
	return p
}

// Number is the phone number as digits.
func (p *Phone) Number() string {
	if p == nil {
		return ""
	}
	return p.user
}

// JID is the phone's own (primary device) JID.
func (p *Phone) JID() types.JID { return types.NewJID(p.user, types.DefaultUserServer) }

// allocateDevice picks the next companion device number; callers hold srv.mu.
func (p *Phone) allocateDevice() uint16 {
	p.nextDevice++
	return p.nextDevice
}

// ScanQR links the client that shows this QR payload (either form ParseQR
// reads) to the phone's account. It returns once the client has confirmed
// pairing and the server has sent it the 515 restart; the returned JID is the
// new device's.
func (p *Phone) ScanQR(ctx context.Context, qr string) (types.JID, error) {
	payload, err := ParseQR(qr)
	if err != nil {
		return types.EmptyJID, err
	}
	noiseKey, identityKey, advSecret := payload.NoiseKey, payload.IdentityKey, payload.ADVSecret
	reg, err := p.srv.claimRef(payload.Ref, noiseKey)
	if err != nil {
		return types.EmptyJID, err
	}
	if string(identityKey) != string(reg.identityKey[:]) {
		p.srv.releaseRegistration(reg)
		return types.EmptyJID, fmt.Errorf("%w: identity key does not match the registration", ErrMalformedQR)
	}
	return p.srv.completePairing(ctx, reg, p, advSecret)
}

// signDeviceIdentity builds what pair-success carries:
// ADVSignedDeviceIdentityHMAC{ADVSignedDeviceIdentity{details, account key,
// XEdDSA(account, [6,0] ‖ details ‖ companion identity)}, HMAC(advSecret)}.
func (p *Phone) signDeviceIdentity(companionIdentity [32]byte, advSecret []byte, keyIndex uint32) ([]byte, error) {
	var rawID [4]byte
	_, _ = rand.Read(rawID[:])
	details, err := proto.Marshal(&waAdv.ADVDeviceIdentity{
		RawID:     proto.Uint32(binary.BigEndian.Uint32(rawID[:])),
		Timestamp: proto.Uint64(uint64(time.Now().Unix())),
		KeyIndex:  proto.Uint32(keyIndex),
	})
	if err != nil {
		return nil, err
	}
	sig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*p.account.Priv), concat([]byte{6, 0}, details, companionIdentity[:]))
	signed, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentity{
		Details:             details,
		AccountSignatureKey: p.account.Pub[:],
		AccountSignature:    sig[:],
	})
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, advSecret)
	mac.Write(signed)
	return proto.Marshal(&waAdv.ADVSignedDeviceIdentityHMAC{Details: signed, HMAC: mac.Sum(nil)})
}

// Devices lists the phone's linked devices that are not removed.
func (p *Phone) Devices() []types.JID {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	var out []types.JID
	for jid, dev := range p.srv.devices {
		if dev.phone == p && !dev.removed {
			out = append(out, jid)
		}
	}
	return out
}
