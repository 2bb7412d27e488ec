package whatsapp_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
	"golang.org/x/time/rate"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// The crash tests run the session's client in a child process (this test binary, re-executed)
// that SIGKILLs itself at a chosen point of an inbox write, as a node failure would.
const (
	envChild      = "WAOP_INBOX_CHILD"        // store path; set only in the child
	envChildWA    = "WAOP_INBOX_CHILD_FAKEWA" // fakewa client config path
	envChildCrash = "WAOP_INBOX_CHILD_CRASH"  // "before-commit", "after-commit" or ""
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envChild); path != "" {
		runChild(path)
		return
	}
	os.Exit(m.Run())
}

// runChild opens the session's client on the store, connects and serves until killed.
func runChild(path string) {
	cfg, err := fakewa.ReadClientConfig(os.Getenv(envChildWA))
	if err != nil {
		os.Exit(3)
	}
	kill := func(ev inbox.Event) {
		_, _ = os.Stderr.WriteString("child: killing itself at an inbox write of " + ev.Type + "\n")
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	opener := whatsapp.Opener{
		Store:     session.StoreConfig{Type: "sqlite", SQLitePath: path},
		Configure: cfg.Apply,
		// Outbox tests queue hundreds of messages: no rate limit in the child.
		Send: whatsapp.SendOptions{Rate: rate.Inf, Burst: 1},
		ConfigureInbox: func(s *inbox.Store) {
			// Only a message row: a login is a connection.changed row too, written first.
			onMessage := func(ev inbox.Event) {
				if ev.Type == inbox.TypeMessage {
					kill(ev)
				}
			}
			switch os.Getenv(envChildCrash) {
			case "before-commit":
				s.BeforeCommit = onMessage
			case "after-commit":
				s.AfterCommit = onMessage
			}
		},
	}
	// Warnings and errors of the child's client go to the test output (seen when a test fails).
	log := funcr.New(func(prefix, args string) { _, _ = os.Stderr.WriteString("child: " + prefix + " " + args + "\n") }, funcr.Options{})
	cli, err := opener.Open(context.Background(), log, func(error) bool { return true })
	if err != nil {
		os.Exit(4)
	}
	if err := cli.Connect(context.Background()); err != nil {
		os.Exit(5)
	}
	go func() {
		for range cli.Events() {
		}
	}()
	select {}
}

type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the child has ended; err is then set
	err  error
}

func startChild(t *testing.T, storePath, waConfig, crash string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+storePath, envChildWA+"="+waConfig, envChildCrash+"="+crash)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

// killedBySIGKILL waits for the child to die of the SIGKILL it sent itself.
func (c *child) killedBySIGKILL(g Gomega) {
	g.Eventually(c.done).WithTimeout(30 * time.Second).Should(BeClosed())
	err := c.err
	var exit *exec.ExitError
	g.Expect(errors.As(err, &exit)).To(BeTrue(), "child ended with %v", err)
	status, _ := exit.Sys().(syscall.WaitStatus)
	g.Expect(status.Signaled() && status.Signal() == syscall.SIGKILL).To(BeTrue(), "child ended with %v", err)
}

func dsn(path string) string { return whatsapp.SQLiteDSN(path) }

// startPaired starts a fake WhatsApp server for the test and pairs a device store with it as
// number: the server, the store's path and the phone.
func startPaired(t testing.TB, number string) (*fakewa.Server, string, *fakewa.Device) {
	t.Helper()
	srv, err := fakewa.Start(fakewa.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	path, d := pairStore(t, srv, number)
	return srv, path, d
}

// startPairedForChild is startPaired plus the client config file through which a child
// process (startChild) reaches the same fake server: the server, the store's path, that file
// and the phone.
func startPairedForChild(t testing.TB, number string) (*fakewa.Server, string, string, *fakewa.Device) {
	t.Helper()
	srv, path, d := startPaired(t, number)
	waConfig := filepath.Join(t.TempDir(), "fakewa.json")
	if err := srv.WriteClientConfig(waConfig); err != nil {
		t.Fatal(err)
	}
	return srv, path, waConfig, d
}

// pairStore pairs a device on a fresh SQLite store (a plain whatsmeow client, closed after
// it uploaded its pre-keys) and returns the store path and the device.
func pairStore(t testing.TB, srv *fakewa.Server, number string) (string, *fakewa.Device) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "device.db")
	container, err := sqlstore.New(ctx, "sqlite", dsn(path), waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = container.Close() }()
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cli := whatsmeow.NewClient(dev, waLog.Noop)
	if err := srv.ConfigureClient(cli); err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			connected <- struct{}{}
		}
	})
	qrs, err := cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	item := <-qrs
	jid, err := srv.Phone(number).ScanQR(ctx, item.Code)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("never connected after pairing")
	}
	d := srv.Device(jid)
	if _, err := d.WaitStats(ctx, func(st fakewa.DeviceStats) bool { return st.PreKeys > 0 }); err != nil {
		t.Fatal(err)
	}
	cli.Disconnect()
	if _, err := d.WaitStats(ctx, func(st fakewa.DeviceStats) bool { return st.Live == 0 }); err != nil {
		t.Fatal(err)
	}
	return path, d
}

// inboxRows reads the inbox of the store at path (no client running on it).
func inboxRows(g Gomega, path string) []inbox.Event {
	db, err := sql.Open("sqlite", dsn(path))
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = db.Close() }()
	box, err := inbox.Open(context.Background(), db, "sqlite")
	g.Expect(err).NotTo(HaveOccurred())
	rows, err := box.After(context.Background(), 0, 1000)
	g.Expect(err).NotTo(HaveOccurred())
	// Message rows only: each login adds a connection.changed row.
	return slices.DeleteFunc(rows, func(ev inbox.Event) bool { return ev.Type == whatsapp.TypeConnectionChanged })
}

func text(g Gomega, ev inbox.Event) string {
	var body struct{ Text string }
	g.Expect(json.Unmarshal(ev.Data, &body)).To(Succeed())
	return body.Text
}

func TestInboxLosesNothingWhenTheProcessDiesAroundTheCommit(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv, path, waConfig, d := startPairedForChild(t, "15550008001")
	phone := srv.Phone("15550008002")
	to := types.NewJID("15550008001", types.DefaultUserServer)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// 1. Killed after the row is written and before it is committed: no row, no receipt.
	first, err := phone.SendText(ctx, to, "first")
	g.Expect(err).NotTo(HaveOccurred())
	startChild(t, path, waConfig, "before-commit").killedBySIGKILL(g)
	g.Expect(inboxRows(g, path)).To(BeEmpty())
	st := d.Mailbox()
	g.Expect(st.Pending).To(Equal(1), "WhatsApp was never told")
	g.Expect(st.Writes).To(Equal(1))

	// 2. Redelivered at the next login, committed, then killed before the receipt went out.
	startChild(t, path, waConfig, "after-commit").killedBySIGKILL(g)
	rows := inboxRows(g, path)
	g.Expect(rows).To(HaveLen(1))
	g.Expect(rows[0].MessageID).To(Equal(first.ID))
	g.Expect(text(g, rows[0])).To(Equal("first"))
	g.Expect(d.Mailbox().Pending).To(Equal(1), "still not acknowledged")

	// 3. Redelivered again: the insert finds the row (one event, same id), and only now the
	// device acknowledges. A new message arrives on the live connection too.
	running := startChild(t, path, waConfig, "")
	_, err = d.WaitMailbox(ctx, func(st fakewa.MailboxStats) bool { return st.Pending == 0 && st.Receipts["delivery"] == 1 })
	g.Expect(err).NotTo(HaveOccurred())
	second, err := phone.SendText(ctx, to, "second")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = d.WaitMailbox(ctx, func(st fakewa.MailboxStats) bool { return st.Pending == 0 && st.Receipts["delivery"] == 2 })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(running.cmd.Process.Kill()).To(Succeed())
	<-running.done

	st = d.Mailbox()
	g.Expect(st.Writes).To(Equal(4), "first written three times, second once")
	g.Expect(st.Redeliveries).To(Equal(2))
	rows = inboxRows(g, path)
	g.Expect(rows).To(HaveLen(2), "a redelivered message is one event")
	g.Expect([]string{rows[0].MessageID, rows[1].MessageID}).To(Equal([]string{first.ID, second.ID}))
	g.Expect(text(g, rows[1])).To(Equal("second"))
	g.Expect(rows[0].Type).To(Equal(inbox.TypeMessage))
	g.Expect(rows[0].ID).To(Equal(inbox.EventID(inbox.TypeMessage, phone.JID().String(), phone.JID().String(), first.ID)))
}
