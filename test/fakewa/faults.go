package fakewa

import (
	"errors"
	"strconv"

	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// LoginFailure is a <failure> the server answers a login with instead of
// <success>. whatsmeow maps Reason 405 to ClientOutdated, 402 to
// TemporaryBan (Code, Expire), 401/403/406 to LoggedOut, 500/503 to a
// silent reconnect and anything else to ConnectFailure.
type LoginFailure struct {
	Reason  int           `json:"reason"`
	Code    int           `json:"code,omitempty"`
	Expire  time.Duration `json:"expire,omitempty"`
	Message string        `json:"message,omitempty"`
}

// Common failures.
var (
	FailureClientOutdated = LoginFailure{Reason: 405}
	FailureUnavailable    = LoginFailure{Reason: 503}
)

// FailureTemporaryBan is a 402 with a ban reason code and its expiry.
func FailureTemporaryBan(code int, expire time.Duration) LoginFailure {
	return LoginFailure{Reason: 402, Code: code, Expire: expire}
}

type loginFailurePlan struct {
	failure   LoginFailure
	remaining int // <= 0: every login until cleared
}

func failureNode(f LoginFailure) waBinary.Node {
	attrs := waBinary.Attrs{"reason": strconv.Itoa(f.Reason)}
	if f.Code != 0 {
		attrs["code"] = strconv.Itoa(f.Code)
	}
	if f.Expire > 0 {
		attrs["expire"] = strconv.FormatInt(int64(f.Expire/time.Second), 10)
	}
	if f.Message != "" {
		attrs["message"] = f.Message
	}
	return waBinary.Node{Tag: "failure", Attrs: attrs}
}

// ErrUnknownDevice is returned when acting on a device the server never paired.
var ErrUnknownDevice = errors.New("fakewa: unknown device")

// FailLogins makes the device's next logins fail with f: times of them, or
// all of them until ClearLoginFailures when times <= 0. Live connections are
// not touched; combine with DropConnections to make the client reconnect
// into the failure now.
func (d *Device) FailLogins(f LoginFailure, times int) {
	d.srv.mu.Lock()
	defer d.srv.mu.Unlock()
	d.srv.failures[d.jid] = &loginFailurePlan{failure: f, remaining: times}
}

// ClearLoginFailures lets logins succeed again.
func (d *Device) ClearLoginFailures() {
	d.srv.mu.Lock()
	defer d.srv.mu.Unlock()
	delete(d.srv.failures, d.jid)
}

func (s *Server) takeLoginFailureLocked(jid types.JID) (LoginFailure, bool) {
	plan := s.failures[jid]
	if plan == nil {
		return LoginFailure{}, false
	}
	if plan.remaining > 0 {
		plan.remaining--
		if plan.remaining == 0 {
			delete(s.failures, jid)
		}
	}
	return plan.failure, true
}

// liveConnsLocked takes all live connections of a device out of the count,
// recording reason, and returns them for the caller to end on the wire.
func (s *Server) endAllLiveLocked(dev *deviceRecord, reason string) []*conn {
	var out []*conn
	for id, c := range dev.conns {
		out = append(out, c)
		s.endLiveLocked(c, reason)
		delete(dev.conns, id)
	}
	return out
}

// endLive ends the device's live connections (recording reason) and runs also on its record,
// both under the server lock, and returns the connections for the caller to say goodbye on
// outside the lock.
func (d *Device) endLive(reason string, also func(*deviceRecord)) ([]*conn, error) {
	s := d.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	dev := s.devices[d.jid]
	if dev == nil {
		return nil, ErrUnknownDevice
	}
	conns := s.endAllLiveLocked(dev, reason)
	if also != nil {
		also(dev)
	}
	return conns, nil
}

// SendStreamError sends <stream:error code=CODE/> to the device's live
// connections and closes them, returning how many it hit. With 503 (and
// other codes whatsmeow does not treat as terminal) the client reconnects.
func (d *Device) SendStreamError(code int) (int, error) {
	conns, err := d.endLive("stream-error-"+strconv.Itoa(code), nil)
	if err != nil {
		return 0, err
	}
	for _, c := range conns {
		c.log.Info("sending stream error on request", "code", code)
		c.endWith(waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": strconv.Itoa(code)}})
	}
	return len(conns), nil
}

// DropConnections closes the TCP connections under the device's live
// sockets without any TLS, websocket or stream goodbye, as a network failure
// would. whatsmeow reconnects on its own.
func (d *Device) DropConnections() (int, error) {
	conns, err := d.endLive(ReasonTCPDrop, nil)
	if err != nil {
		return 0, err
	}
	for _, c := range conns {
		c.log.Info("dropping TCP connection on request")
		c.dropTCP()
	}
	return len(conns), nil
}

// Remove unlinks the device as the phone's "Linked devices > Log out" does:
// live connections get <stream:error code="401"><conflict
// type="device_removed"/></stream:error> and later logins with its keys
// are refused with 401.
func (d *Device) Remove() error {
	s := d.srv
	conns, err := d.endLive(ReasonDeviceRemoved, func(dev *deviceRecord) {
		if !dev.removed {
			dev.removed = true
			s.record(&dev.ledger, Event{Kind: EventRemoved, Device: dev.jid.String(), Reason: "phone"})
		}
	})
	if err != nil {
		return err
	}
	for _, c := range conns {
		c.log.Info("device removed, sending 401 device_removed")
		c.endWith(waBinary.Node{
			Tag:     "stream:error",
			Attrs:   waBinary.Attrs{"code": "401"},
			Content: []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": "device_removed"}}},
		})
	}
	return nil
}

// logoutFromClient handles whatsmeow's Logout (remove-companion-device):
// the device is unlinked; the client closes its own socket.
func (s *Server) logoutFromClient(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dev := c.device
	if dev == nil || dev.removed {
		return
	}
	dev.removed = true
	s.record(&dev.ledger, Event{Kind: EventRemoved, Device: dev.jid.String(), ConnID: c.id, Reason: "client-logout"})
}
