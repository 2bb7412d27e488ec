package session

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"
)

// Client is the whole surface of a WhatsApp client the runtime uses. It is kept this small so
// the state machine can be tested against a fake and read without knowing whatsmeow.
type Client interface {
	// Events delivers everything the state machine reacts to, in order, for the Client's life.
	Events() <-chan Event
	// PairedJID is the device's JID, or "" while the store holds no paired device.
	PairedJID() string
	// Connect opens the connection: a login when paired, else a pairing window (QRCodes).
	Connect(ctx context.Context) error
	// Disconnect closes the connection; the client may Connect again later.
	Disconnect()
	// SetDeviceName sets the name the phone lists under Linked devices for the next pairing
	// ("" keeps the default); a device already linked keeps the name it was linked with.
	SetDeviceName(name string)
	// PairPhone asks for a pairing code for phone (E.164); valid only after QRCodes.
	PairPhone(ctx context.Context, phone string) (string, error)
	// Logout unlinks the device when it can, wipes the store either way and leaves a fresh,
	// unpaired device behind.
	Logout(ctx context.Context) error
	// ReleaseStore forgets which resource the store belongs to, once its device is gone (the
	// resource is being deleted), so that another resource may use the database.
	ReleaseStore(ctx context.Context) error
	// IsLoggedIn reports a live, authenticated connection.
	IsLoggedIn() bool
	// Close disconnects for good: after it Connect fails with ErrClientClosed.
	Close() error
}

// ErrClientClosed is returned by Connect after Close.
var ErrClientClosed = errors.New("whatsapp client closed")

// OpenClientFunc opens the device store and makes a Client over it. shouldReconnect is asked
// after each failed automatic reconnect; false stops reconnecting. A store that cannot be
// opened is an error that names where the store is.
type OpenClientFunc func(ctx context.Context, log logr.Logger, shouldReconnect func(error) bool) (Client, error)

// Event is one observation from the client.
type Event interface{ isEvent() }

type (
	// QRCodes opens a pairing window: each code is valid in turn (first 60 s, then 20 s each).
	QRCodes struct{ Codes []string }
	// PairSuccess: the phone linked the device; a login follows.
	PairSuccess struct{ JID, Platform string }
	// PairError: the phone linked the device but finishing it locally failed.
	PairError struct{ Err error }
	// Connected: logged in.
	Connected struct{ JID, PushName, Platform string }
	// Disconnected: the connection dropped; when paired the client reconnects by itself.
	Disconnected struct{}
	// StreamReplaced: another client logged in with the same keys.
	StreamReplaced struct{}
	// LoggedOut: the device was removed from the account; the store has been wiped.
	LoggedOut struct{ Reason string }
	// ClientOutdated: WhatsApp refuses this client version.
	ClientOutdated struct{}
	// TemporaryBan: logins are refused until Expire from now.
	TemporaryBan struct {
		Code   string
		Expire time.Duration
	}
	// ConnectFailure: any other refused login.
	ConnectFailure struct{ Code, Message string }
)

func (QRCodes) isEvent()        {}
func (PairSuccess) isEvent()    {}
func (PairError) isEvent()      {}
func (Connected) isEvent()      {}
func (Disconnected) isEvent()   {}
func (StreamReplaced) isEvent() {}
func (LoggedOut) isEvent()      {}
func (ClientOutdated) isEvent() {}
func (TemporaryBan) isEvent()   {}
func (ConnectFailure) isEvent() {}
