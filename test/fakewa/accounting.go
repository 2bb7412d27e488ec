package fakewa

import (
	"context"
	"slices"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// EventKind names an entry of a device's timeline.
type EventKind string

const (
	// EventPairingWindow: a registration connection received its QR refs.
	EventPairingWindow EventKind = "pairing-window"
	// EventPairingExpired: the last ref expired and the server closed the
	// registration connection, as the real service does.
	EventPairingExpired EventKind = "pairing-expired"
	// EventPaired: the client confirmed pair-success; the device exists.
	EventPaired EventKind = "paired"
	// EventConnected: a login was accepted; the connection is live.
	EventConnected EventKind = "connected"
	// EventDisconnected: a live connection ended (see Event.Reason).
	EventDisconnected EventKind = "disconnected"
	// EventLoginRejected: a login got a <failure> and was not made live.
	EventLoginRejected EventKind = "login-rejected"
	// EventRemoved: the device was unlinked (device_removed or logout).
	EventRemoved EventKind = "removed"
)

// Reasons a live connection ends, as recorded in Event.Reason.
const (
	ReasonReplaced      = "replaced"       // another login with the same keys
	ReasonDeviceRemoved = "device_removed" // 401 stream error
	ReasonClientClosed  = "client-closed"  // the client closed the socket
	ReasonTCPDrop       = "tcp-drop"       // DropConnections
	ReasonServerClosed  = "server-closed"  // Server.Close
	ReasonBadInput      = "bad-input"      // malformed frame or node
)

// Event is one timeline entry. Live is the device's live count right after
// the event, so a timeline can be checked without replaying it.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   EventKind `json:"kind"`
	Device string    `json:"device,omitempty"`
	ConnID uint64    `json:"conn"`
	Reason string    `json:"reason,omitempty"`
	Live   int       `json:"live"`
}

// DeviceStats is a snapshot of one device's accounting.
//
// Live counts connections whose login the server accepted and that have not
// ended. A connection ends when the server sends it a terminal stream error
// or failure, when the server drops it, or when its socket closes, whichever
// comes first; from then on the server ignores its frames. When a second
// login with the same keys arrives, the older connection is ended (and its
// EventDisconnected recorded) before the newer one is made live, exactly as
// the real service drops the older session: so MaxLive stays 1 even while two
// clients fight over one device, and the fight shows in Replacements.
// "Never two live clients for one device" is therefore asserted as
// MaxLive <= 1 && Replacements == 0.
type DeviceStats struct {
	JID   string `json:"jid"`
	LID   string `json:"lid,omitempty"`
	Phone string `json:"phone"`
	// Name is the device's name as the phone lists it under Linked devices (the companion's
	// DeviceProps.os sent with the registration).
	Name           string  `json:"name,omitempty"`
	Known          bool    `json:"known"`
	Removed        bool    `json:"removed"`
	Live           int     `json:"live"`
	MaxLive        int     `json:"maxLive"`
	Logins         int     `json:"logins"`
	RejectedLogins int     `json:"rejectedLogins"`
	Replacements   int     `json:"replacements"`
	PairingWindows int     `json:"pairingWindows"`
	PreKeys        int     `json:"preKeys"`
	Pings          int     `json:"pings"`
	Timeline       []Event `json:"timeline,omitempty"`
}

// ServerStats are totals over all connections, paired or not.
type ServerStats struct {
	Handshakes     int `json:"handshakes"`
	OpenSockets    int `json:"openSockets"`
	PairingWindows int `json:"pairingWindows"`
	Logins         int `json:"logins"`
	Devices        int `json:"devices"`
	BadInputs      int `json:"badInputs"`
}

// ledger is the per-identity accounting. Before pairing it is keyed by the
// client's noise key (so repeated pairing windows of one client add up), and
// the device inherits it when pairing succeeds. Guarded by Server.mu.
type ledger struct {
	live, maxLive  int
	logins         int
	rejected       int
	replacements   int
	pairingWindows int
	preKeys        int
	pings          int
	timeline       []Event
}

// record appends an event and wakes waiters; callers hold s.mu.
func (s *Server) record(l *ledger, ev Event) {
	ev.Time = time.Now()
	ev.Live = l.live
	l.timeline = append(l.timeline, ev)
	s.log.Debug("event", "kind", ev.Kind, "device", ev.Device, "conn", ev.ConnID, "reason", ev.Reason, "live", ev.Live)
	close(s.changed)
	s.changed = make(chan struct{})
}

// bump wakes waiters after a counter changed without a timeline entry.
func (s *Server) bump() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (l *ledger) snapshot(dev *deviceRecord) DeviceStats {
	st := DeviceStats{
		Known:          true,
		Live:           l.live,
		MaxLive:        l.maxLive,
		Logins:         l.logins,
		RejectedLogins: l.rejected,
		Replacements:   l.replacements,
		PairingWindows: l.pairingWindows,
		PreKeys:        l.preKeys,
		Pings:          l.pings,
		Timeline:       slices.Clone(l.timeline),
	}
	if dev != nil {
		st.JID = dev.jid.String()
		st.LID = dev.lid.String()
		st.Phone = dev.phone.Number()
		st.Removed = dev.removed
		st.Name = dev.name
	}
	return st
}

// Device is a handle on one device, known or not yet known: its methods read
// the server's current state each time.
type Device struct {
	srv *Server
	jid types.JID
}

// Device returns a handle for the device with this JID (user:device@server).
func (s *Server) Device(jid types.JID) *Device { return &Device{srv: s, jid: jid} }

// JID is the device's JID.
func (d *Device) JID() types.JID { return d.jid }

// Stats returns a snapshot; Known is false if the device never paired.
func (d *Device) Stats() DeviceStats {
	d.srv.mu.Lock()
	defer d.srv.mu.Unlock()
	return d.statsLocked()
}

func (d *Device) statsLocked() DeviceStats {
	dev := d.srv.devices[d.jid]
	if dev == nil {
		return DeviceStats{JID: d.jid.String()}
	}
	return dev.ledger.snapshot(dev)
}

// WaitStats blocks until cond holds for the device's stats or ctx ends, and
// returns the last snapshot it saw.
func (d *Device) WaitStats(ctx context.Context, cond func(DeviceStats) bool) (DeviceStats, error) {
	return waitUntil(ctx, d.srv, d.statsLocked, cond)
}

// waitUntil takes a snapshot with read under the server lock after every change the server
// announces, until cond holds for it or ctx ends; it returns the last snapshot.
func waitUntil[T any](ctx context.Context, s *Server, read func() T, cond func(T) bool) (T, error) {
	for {
		s.mu.Lock()
		st := read()
		changed := s.changed
		s.mu.Unlock()
		if cond(st) {
			return st, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

// WaitEvent blocks until the device's timeline holds an event of this kind
// at index >= from (use len(Stats().Timeline) taken before acting) and
// returns it.
func (d *Device) WaitEvent(ctx context.Context, from int, kind EventKind) (Event, error) {
	var found Event
	_, err := d.WaitStats(ctx, func(st DeviceStats) bool {
		for i := from; i < len(st.Timeline); i++ {
			if st.Timeline[i].Kind == kind {
				found = st.Timeline[i]
				return true
			}
		}
		return false
	})
	return found, err
}

// Stats returns server-wide totals.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statsLocked()
}

func (s *Server) statsLocked() ServerStats {
	st := s.totals
	st.OpenSockets = len(s.conns)
	st.Devices = len(s.devices)
	return st
}

// WaitServerStats blocks until cond holds for the server totals or ctx ends.
func (s *Server) WaitServerStats(ctx context.Context, cond func(ServerStats) bool) (ServerStats, error) {
	return waitUntil(ctx, s, s.statsLocked, cond)
}

// Devices lists every device the server knows, without timelines.
func (s *Server) Devices() []DeviceStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DeviceStats, 0, len(s.devices))
	for _, dev := range s.devices {
		st := dev.ledger.snapshot(dev)
		st.Timeline = nil
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b DeviceStats) int {
		if a.JID < b.JID {
			return -1
		} else if a.JID > b.JID {
			return 1
		}
		return 0
	})
	return out
}
