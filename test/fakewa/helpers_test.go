package fakewa_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"
	_ "modernc.org/sqlite"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// Set FAKEWA_DEBUG=1 to see server and client logs of a failing test.
var debug = os.Getenv("FAKEWA_DEBUG") != ""

const waitTimeout = 15 * time.Second

func TestMain(m *testing.M) {
	// whatsmeow pings every 20-30s; tests make that quick so keepalive
	// answers are observable. Set before any client exists (no race).
	whatsmeow.KeepAliveIntervalMin = 100 * time.Millisecond
	whatsmeow.KeepAliveIntervalMax = 200 * time.Millisecond
	os.Exit(m.Run())
}

func startServer(t *testing.T, opts fakewa.Options) *fakewa.Server {
	t.Helper()
	if debug {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := fakewa.Start(opts)
	if err != nil {
		t.Fatalf("start fakewa: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// storePath is a SQLite device store in the test's temp dir; two clients
// built on one path share device keys, as two pods on one volume would.
func storePath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "device.db")
}

func dsn(path string) string {
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// client is a real whatsmeow client on a SQLite store, pointed at srv, with
// every event recorded.
type client struct {
	*whatsmeow.Client
	container *sqlstore.Container
	events    *recorder
}

func newClient(t *testing.T, srv *fakewa.Server, path string) *client {
	t.Helper()
	ctx := ctxT(t)
	log := waLog.Noop
	if debug {
		log = waLog.Stdout(filepath.Base(filepath.Dir(path)), "DEBUG", false)
	}
	container, err := sqlstore.New(ctx, "sqlite", dsn(path), log.Sub("DB"))
	if err != nil {
		t.Fatalf("sqlstore: %v", err)
	}
	t.Cleanup(func() { _ = container.Close() })
	device, err := container.GetFirstDevice(ctx)
	if err != nil {
		t.Fatalf("device: %v", err)
	}
	cli := whatsmeow.NewClient(device, log)
	if err := srv.ConfigureClient(cli); err != nil {
		t.Fatalf("configure: %v", err)
	}
	c := &client{Client: cli, container: container, events: newRecorder()}
	cli.AddEventHandler(c.events.add)
	t.Cleanup(cli.Disconnect)
	return c
}

// recorder keeps every event a client emitted, in order.
type recorder struct {
	mu      sync.Mutex
	events  []any
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(evt any) {
	r.mu.Lock()
	r.events = append(r.events, evt)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) all() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]any(nil), r.events...)
}

// count is how many events of type T were recorded.
func count[T any](r *recorder) int {
	n := 0
	for _, e := range r.all() {
		if _, ok := e.(T); ok {
			n++
		}
	}
	return n
}

// waitNth returns the nth (1-based) event of type T, waiting for it.
func waitNth[T any](t *testing.T, r *recorder, n int) T {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		r.mu.Lock()
		seen := 0
		for _, e := range r.events {
			if v, ok := e.(T); ok {
				seen++
				if seen == n {
					r.mu.Unlock()
					return v
				}
			}
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			var zero T
			t.Fatalf("no %T #%d within %s; events: %s", zero, n, waitTimeout, describe(r.all()))
			return zero
		}
	}
}

func describe(events []any) string {
	s := ""
	for _, e := range events {
		s += fmt.Sprintf("%T ", e)
	}
	return s
}
