// Package whatsapp implements the session's Client seam over whatsmeow and its sqlstore.
package whatsapp

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"go.mau.fi/whatsmeow"
	waWa6 "go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
	"github.com/waoperator/whatsapp-operator/internal/waendpoint"
)

// Opener opens a store and a whatsmeow client over it; its Open is a session.OpenClientFunc.
type Opener struct {
	Store session.StoreConfig
	// Owner is the resource the store belongs to (bindStore); empty skips the check, for tools
	// that open a store they know.
	Owner StoreOwner
	// DisplayName is the browser shown on the phone for PhoneCode pairing, "Chrome" by default;
	// WhatsApp wants "Browser (OS)", and the device name takes the OS's place.
	DisplayName string
	// Configure points each new client at its endpoint. Nil means waendpoint.Configure, the
	// real service in a production build. Only Go code (tests) can set it.
	Configure func(*whatsmeow.Client) error
	// ConfigureInbox, when set, sees the inbox before the client starts. Only tests set it.
	ConfigureInbox func(*inbox.Store)
	// Sinks receive the inbox's events while the client is open; EventSource is their
	// CloudEvents source (the WhatsAppConnection).
	Sinks       []events.Sink
	EventSource string
	// InboxRetention is how long an event stays in the inbox once every sink has it
	// (default 7 days); PruneEvery how often that is enforced (default 1 h).
	InboxRetention, PruneEvery time.Duration
	// Send configures the outbox (outbox.go).
	Send SendOptions
	// ObserveEvents, when set, is given each opened client's deliverers and inbox (for the
	// session's /events view and metrics).
	ObserveEvents func(EventsView)
	// HealthInterval is the least time between two reports of the sinks' health (each may
	// write the EventsDelivering condition), and how often the report is repeated; default 10 s.
	HealthInterval time.Duration

	// noSchemaSnapshot makes a new SQLite store by running the migrations (MigrateNewSQLiteStore).
	noSchemaSnapshot bool
}

// Open implements session.OpenClientFunc.
func (o Opener) Open(ctx context.Context, log logr.Logger, shouldReconnect func(error) bool) (session.Client, error) {
	wlog := NewLogger(log)
	container, db, dialect, err := openStore(ctx, o.Store, !o.noSchemaSnapshot, wlog.Sub("Database"))
	if err != nil {
		return nil, err
	}
	if o.Owner != (StoreOwner{}) {
		if err := bindStore(ctx, db, container, o.Owner); err != nil {
			_ = container.Close()
			return nil, err
		}
	}
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		_ = container.Close()
		return nil, safeError(err)
	}
	box, err := inbox.Open(ctx, db, dialect)
	if err != nil {
		_ = container.Close()
		return nil, safeError(err)
	}
	if o.ConfigureInbox != nil {
		o.ConfigureInbox(box)
	}
	cursors, err := events.OpenCursors(ctx, db)
	if err != nil {
		_ = container.Close()
		return nil, safeError(err)
	}
	a := &client{container: container, db: db, inbox: box, log: wlog, opener: o, shouldReconnect: shouldReconnect,
		events: make(chan session.Event, 256), done: make(chan struct{})}
	a.delivery = startDelivery(box, cursors, o.Sinks, o.EventSource, cmp.Or(o.InboxRetention, 7*24*time.Hour),
		cmp.Or(o.PruneEvery, time.Hour), log.WithName("events"))
	a.delivery.reportHealth(a.emit, cmp.Or(o.HealthInterval, 10*time.Second))
	if o.ObserveEvents != nil {
		o.ObserveEvents(EventsView{Deliverers: a.delivery.deliverers, Inbox: box})
	}
	if a.opener.Configure == nil {
		a.opener.Configure = waendpoint.Configure
	}
	if a.opener.DisplayName == "" {
		a.opener.DisplayName = "Chrome"
	}
	if a.outbox, err = startOutbox(ctx, db, dialect, a, o.Send, log.WithName("outbox")); err != nil {
		a.delivery.stop()
		_ = container.Close()
		return nil, safeError(err)
	}
	if err := a.use(dev); err != nil {
		a.outbox.stop()
		_ = container.Close()
		return nil, err
	}
	return a, nil
}

type client struct {
	container       *sqlstore.Container
	inbox           *inbox.Store
	delivery        *delivery
	outbox          *outboxRun
	db              *sql.DB // the store's database, for its owner record
	log             waLog.Logger
	opener          Opener
	shouldReconnect func(error) bool
	events          chan session.Event
	done            chan struct{}

	// current is read by event handlers without mu: a handler must never wait for a caller
	// holding mu (Logout waits for WhatsApp's answer while holding it).
	current atomic.Pointer[whatsmeow.Client]

	prekeys *preKeyPool // of the current client while it is not paired

	// deviceName is what the phone lists under Linked devices (spec.deviceName).
	deviceName atomic.Pointer[string]

	mu         sync.Mutex
	connCancel context.CancelFunc
	closed     bool
}

// use makes a whatsmeow client for dev and makes it current.
func (a *client) use(dev *store.Device) error {
	cli := whatsmeow.NewClient(dev, a.log.Sub("Client"))
	cli.EnableAutoReconnect = true
	cli.AutoReconnectHook = a.shouldReconnect
	enableInbox(cli)
	a.prekeys = enablePreKeyPool(cli, a.container, a.db)
	cli.GetClientPayload = func() *waWa6.ClientPayload { return registrationPayload(cli.Store, a.name()) }
	if err := a.opener.Configure(cli); err != nil {
		return err
	}
	cli.AddEventHandler(func(evt any) {
		if a.current.Load() != cli {
			return // a client replaced by Logout
		}
		if ev := translate(cli, evt); ev != nil {
			select {
			case a.events <- ev:
			case <-a.done:
			}
		}
	})
	cli.AddEventHandler(a.outboxReceipts)
	cli.AddEventHandlerWithSuccessStatus(func(evt any) bool {
		if a.current.Load() != cli {
			return false // a client replaced by Logout must not acknowledge anything
		}
		return a.recordIncoming(evt)
	})
	a.current.Store(cli)
	return nil
}

func (a *client) Events() <-chan session.Event { return a.events }

func (a *client) PairedJID() string {
	if id := a.current.Load().Store.ID; id != nil {
		return id.String()
	}
	return ""
}

func (a *client) IsLoggedIn() bool { return a.current.Load().IsLoggedIn() }

// Connect's context outlives the call: whatsmeow runs its keepalive and automatic reconnects on
// it. Disconnect and Close cancel it, so that a reconnect already past its sleep cannot bring
// the connection back after the fence closed it.
func (a *client) Connect(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return session.ErrClientClosed
	}
	a.cancelConn()
	ctx, cancel := context.WithCancel(context.Background())
	a.connCancel = cancel
	return safeError(a.current.Load().ConnectContext(ctx))
}

func (a *client) cancelConn() {
	if a.connCancel != nil {
		a.connCancel()
		a.connCancel = nil
	}
}

func (a *client) Disconnect() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cancelConn()
	a.current.Load().Disconnect()
}

func (a *client) SetDeviceName(name string) { a.deviceName.Store(&name) }

// name is the device name to pair with: spec.deviceName, else whatsmeow's default.
func (a *client) name() string {
	if n := a.deviceName.Load(); n != nil && *n != "" {
		return *n
	}
	return store.DeviceProps.GetOs()
}

func (a *client) PairPhone(ctx context.Context, phone string) (string, error) {
	display := a.opener.DisplayName + " (" + displaySafe(a.name()) + ")"
	code, err := a.current.Load().PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, display)
	return code, safeError(err)
}

// Logout unlinks the device through WhatsApp when logged in; whatever happened there, the store
// is wiped and a fresh device takes its place, ready to pair.
func (a *client) Logout(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	cli := a.current.Load()
	var unlinkErr error
	if cli.Store.ID != nil {
		if cli.IsLoggedIn() {
			unlinkErr = cli.Logout(ctx)
		} else {
			unlinkErr = errors.New("not connected to WhatsApp")
		}
	}
	a.cancelConn()
	cli.Disconnect()
	if cli.Store.ID != nil {
		if err := cli.Store.Delete(ctx); err != nil {
			return safeError(err)
		}
	}
	if err := a.use(a.container.NewDevice()); err != nil {
		return err
	}
	return unlinkErr
}

func (a *client) ReleaseStore(ctx context.Context) error {
	if a.db == nil || a.current.Load().Store.ID != nil {
		return nil // unbound, or a device is still there
	}
	return releaseStore(ctx, a.db, a.opener.Owner)
}

func (a *client) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	a.cancelConn()
	a.current.Load().Disconnect()
	close(a.done)
	a.delivery.stop()
	a.outbox.stop()
	return a.container.Close()
}
