package fakewa

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"go.mau.fi/libsignal/ecc"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waCompanionReg"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// registration is an unpaired client connection during its pairing window.
type registration struct {
	conn        *conn
	noiseKey    [32]byte
	identityKey [32]byte
	ledger      *ledger
	refs        []string
	timer       *time.Timer
	pairing     bool // a phone is completing pairing on it
	// name is the companion's DeviceProps.os: what the phone lists under Linked devices.
	name string
}

// qrRef is one ref of a pairing window with the moment it stops being
// accepted. Refs are valid from the start of the window, not only during
// their own display slot: a phone cannot see a ref early anyway.
type qrRef struct {
	reg     *registration
	expires time.Time
}

// deviceRecord is a paired companion device as the server knows it.
type deviceRecord struct {
	jid         types.JID
	lid         types.JID
	phone       *Phone
	noiseKey    [32]byte
	identityKey [32]byte
	removed     bool
	name        string // as the phone lists it under Linked devices
	ledger      ledger
	conns       map[uint64]*conn // live connections
}

// Errors the fake phone reports when pairing cannot go on.
var (
	ErrUnknownRef     = errors.New("fakewa: QR ref is unknown (never issued, already used or its connection closed)")
	ErrRefExpired     = errors.New("fakewa: QR ref has expired")
	ErrMalformedQR    = errors.New("fakewa: QR payload is not [" + QRLinkPrefix + "]ref,noiseKey,identityKey,advSecret[,clientType]")
	ErrPairingBusy    = errors.New("fakewa: another phone is already pairing this client")
	ErrPairingRefused = errors.New("fakewa: the client refused pair-success")
)

// startPairingWindow hands a registration connection its refs, like the real
// service: one pair-device iq with all refs. whatsmeow's QR channel shows
// them one by one (60s, then 20s each); the server only enforces expiry and
// closes the connection after the last ref, which ends the client's QR
// channel with "timeout".
func (s *Server) startPairingWindow(c *conn) {
	s.mu.Lock()
	reg := &registration{conn: c, noiseKey: c.clientStatic}
	copy(reg.identityKey[:], c.payload.GetDevicePairingData().GetEIdent())
	props := &waCompanionReg.DeviceProps{}
	if proto.Unmarshal(c.payload.GetDevicePairingData().GetDeviceProps(), props) == nil {
		reg.name = props.GetOs()
	}
	l := s.pending[reg.noiseKey]
	if l == nil {
		l = &ledger{}
		s.pending[reg.noiseKey] = l
	}
	reg.ledger = l
	c.reg = reg
	now := s.opts.Now()
	expires := now
	refNodes := make([]waBinary.Node, 0, s.opts.QRRefs)
	for i := range s.opts.QRRefs {
		if i == 0 {
			expires = expires.Add(s.opts.FirstRefTTL)
		} else {
			expires = expires.Add(s.opts.NextRefTTL)
		}
		ref := newRef()
		s.refs[ref] = &qrRef{reg: reg, expires: expires}
		reg.refs = append(reg.refs, ref)
		refNodes = append(refNodes, waBinary.Node{Tag: "ref", Content: []byte(ref)})
	}
	l.pairingWindows++
	s.totals.PairingWindows++
	s.record(l, Event{Kind: EventPairingWindow, ConnID: c.id})
	reg.timer = time.AfterFunc(expires.Sub(now), func() { s.expirePairingWindow(reg) })
	s.mu.Unlock()

	err := c.sendNode(waBinary.Node{
		Tag:     "iq",
		Attrs:   waBinary.Attrs{"from": serverJID, "type": "set", "id": newID(), "xmlns": "md"},
		Content: []waBinary.Node{{Tag: "pair-device", Content: refNodes}},
	})
	if err != nil {
		c.log.Debug("sending pair-device failed", "err", err)
	}
}

func (s *Server) expirePairingWindow(reg *registration) {
	s.mu.Lock()
	if reg.conn.ended.Load() || reg.pairing {
		s.mu.Unlock()
		return
	}
	s.record(reg.ledger, Event{Kind: EventPairingExpired, ConnID: reg.conn.id})
	s.dropRegistrationLocked(reg)
	s.mu.Unlock()
	reg.conn.log.Info("pairing window expired, closing registration connection")
	reg.conn.closeNow(websocket.StatusNormalClosure)
}

func (s *Server) dropRegistrationLocked(reg *registration) {
	reg.timer.Stop()
	for _, ref := range reg.refs {
		delete(s.refs, ref)
	}
	for number, lc := range s.linkCodes {
		if lc.reg == reg {
			delete(s.linkCodes, number)
		}
	}
}

// claimRef finds the registration a scanned ref belongs to and reserves it
// for one phone.
func (s *Server) claimRef(ref string, noiseKey []byte) (*registration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.refs[ref]
	if r == nil || r.reg.conn.ended.Load() {
		return nil, ErrUnknownRef
	}
	if s.opts.Now().After(r.expires) {
		return nil, ErrRefExpired
	}
	if string(noiseKey) != string(r.reg.noiseKey[:]) {
		return nil, fmt.Errorf("%w: noise key does not match the connection that got this ref", ErrMalformedQR)
	}
	if r.reg.pairing {
		return nil, ErrPairingBusy
	}
	r.reg.pairing = true
	return r.reg, nil
}

func (s *Server) releaseRegistration(reg *registration) {
	s.mu.Lock()
	reg.pairing = false
	s.mu.Unlock()
}

// completePairing sends pair-success signed by the phone's account key and
// HMAC'd with advSecret, waits for the client's pair-device-sign, records the
// device and restarts the stream with 515 as the real service does.
func (s *Server) completePairing(ctx context.Context, reg *registration, phone *Phone, advSecret []byte) (types.JID, error) {
	defer s.releaseRegistration(reg)
	c := reg.conn
	s.mu.Lock()
	deviceNum := phone.allocateDevice()
	jid := types.JID{User: phone.user, Device: deviceNum, Server: types.DefaultUserServer}
	lid := types.JID{User: phone.lidUser, Device: deviceNum, Server: types.HiddenUserServer}
	s.mu.Unlock()

	identity, err := phone.signDeviceIdentity(reg.identityKey, advSecret, uint32(deviceNum))
	if err != nil {
		return types.EmptyJID, err
	}
	reqID := newID()
	ctx, cancel := context.WithTimeout(ctx, s.opts.PairReplyTimeout)
	defer cancel()
	reply, err := c.request(ctx, waBinary.Node{
		Tag: "iq",
		// t: whatsmeow (2026) sets its server clock offset from it, as from <success t=…>.
		Attrs: waBinary.Attrs{"from": serverJID, "type": "set", "id": reqID, "xmlns": "md", "t": strconv.FormatInt(time.Now().Unix(), 10)},
		Content: []waBinary.Node{{Tag: "pair-success", Content: []waBinary.Node{
			{Tag: "device-identity", Content: identity},
			{Tag: "device", Attrs: waBinary.Attrs{"jid": jid, "lid": lid}},
			{Tag: "platform", Attrs: waBinary.Attrs{"name": phone.platform}},
		}}},
	})
	if err != nil {
		return types.EmptyJID, fmt.Errorf("waiting for pair-device-sign: %w", err)
	}
	if attrString(reply, "type") != "result" {
		return types.EmptyJID, fmt.Errorf("%w: %s", ErrPairingRefused, reply.String())
	}
	if err := verifyDeviceSignature(reply, phone, reg.identityKey); err != nil {
		return types.EmptyJID, err
	}

	s.mu.Lock()
	dev := &deviceRecord{
		jid:         jid,
		lid:         lid,
		phone:       phone,
		noiseKey:    reg.noiseKey,
		identityKey: reg.identityKey,
		name:        reg.name,
		ledger:      *reg.ledger,
		conns:       map[uint64]*conn{},
	}
	delete(s.pending, reg.noiseKey)
	s.devices[jid] = dev
	s.record(&dev.ledger, Event{Kind: EventPaired, Device: jid.String(), ConnID: c.id})
	s.dropRegistrationLocked(reg)
	s.mu.Unlock()

	c.log.Info("device paired, restarting stream", "device", jid)
	c.endWith(waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": "515"}})
	return jid, nil
}

// verifyDeviceSignature checks the client's pair-device-sign the way the
// phone would: the device signature over [6,1] ‖ details ‖ identity ‖ account
// key proves the client holds the identity key it registered.
func verifyDeviceSignature(reply *waBinary.Node, phone *Phone, identityKey [32]byte) error {
	raw := childBytes(reply, "pair-device-sign", "device-identity")
	var signed waAdv.ADVSignedDeviceIdentity
	if err := proto.Unmarshal(raw, &signed); err != nil {
		return fmt.Errorf("pair-device-sign: %w", err)
	}
	if len(signed.DeviceSignature) != 64 {
		return errors.New("pair-device-sign without a device signature")
	}
	msg := concat([]byte{6, 1}, signed.Details, identityKey[:], phone.account.Pub[:])
	if !ecc.VerifySignature(ecc.NewDjbECPublicKey(identityKey), msg, [64]byte(signed.DeviceSignature)) {
		return errors.New("pair-device-sign: device signature does not verify")
	}
	return nil
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func newRef() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "2@" + base64.StdEncoding.EncodeToString(b)
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return strconv.FormatUint(uint64(b[0])<<56|uint64(b[1])<<48|uint64(b[2])<<40|uint64(b[3])<<32|
		uint64(b[4])<<24|uint64(b[5])<<16|uint64(b[6])<<8|uint64(b[7]), 10)
}
