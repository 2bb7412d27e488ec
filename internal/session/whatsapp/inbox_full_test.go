package whatsapp_test

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/types"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// A full device store (here the inbox's connection capped at the database's current size with
// PRAGMA max_page_count, so that SQLite answers SQLITE_FULL as on a full volume): the message is
// not acknowledged, so WhatsApp keeps it; the session reports StoreFull, and does not crash or
// drop it. Once there is room, WhatsApp's redelivery is stored and the report clears.
func TestAFullStoreLeavesTheMessageWithWhatsAppAndSaysSo(t *testing.T) {
	g := NewWithT(t)
	srv, path, d := startPaired(t, "15550008401")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var full atomic.Bool
	var fullErrors atomic.Int32
	opener := whatsapp.Opener{
		Store: session.StoreConfig{Type: "sqlite", SQLitePath: path}, Configure: srv.ConfigureClient,
		HealthInterval: 50 * time.Millisecond,
		ConfigureInbox: func(box *inbox.Store) {
			box.OnConn = func(ctx context.Context, conn *sql.Conn) func() {
				if !full.Load() {
					return nil
				}
				var limit int64
				if err := conn.QueryRowContext(ctx, "PRAGMA max_page_count").Scan(&limit); err != nil {
					t.Errorf("reading max_page_count: %v", err)
					return nil
				}
				// Below the current size, SQLite caps at the current size: nothing may grow.
				if _, err := conn.ExecContext(ctx, "PRAGMA max_page_count = 1"); err != nil {
					t.Errorf("capping the database: %v", err)
				}
				fullErrors.Add(1)
				return func() {
					_, _ = conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA max_page_count = "+itoa(limit))
				}
			}
		},
	}
	cli, err := opener.Open(ctx, logr.Discard(), func(error) bool { return true })
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = cli.Close() }()
	var mu sync.Mutex
	var last session.SinksHealth
	go func() {
		for ev := range cli.Events() {
			if h, ok := ev.(session.SinksHealth); ok {
				mu.Lock()
				last = h
				mu.Unlock()
			}
		}
	}()
	storeFull := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return last.StoreFull
	}
	g.Expect(cli.Connect(ctx)).To(Succeed())
	to := types.NewJID("15550008401", types.DefaultUserServer)
	phone := srv.Phone("15550008402")
	g.Eventually(func() error { _, err := phone.SendText(ctx, to, "before"); return err }).WithTimeout(30 * time.Second).Should(Succeed())
	_, err = d.WaitMailbox(ctx, func(st fakewa.MailboxStats) bool { return st.Pending == 0 })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(storeFull()).To(BeFalse())

	full.Store(true)
	big := strings.Repeat("a message the full store has no room for ", 4096) // ~170 KB: new pages
	sent, err := phone.SendText(ctx, to, big)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(storeFull).WithTimeout(30*time.Second).Should(BeTrue(), "the session says the store is full")
	g.Expect(fullErrors.Load()).To(BeNumerically(">", 0))
	g.Consistently(func() int { return d.Mailbox().Pending }).WithTimeout(time.Second).Should(Equal(1),
		"the message is not acknowledged: WhatsApp keeps it")
	g.Expect(inboxRows(g, path)).To(HaveLen(1), "only the message from before")

	// Room again; WhatsApp redelivers what was not acknowledged at the next login.
	full.Store(false)
	_, err = d.DropConnections()
	g.Expect(err).NotTo(HaveOccurred())
	_, err = d.WaitMailbox(ctx, func(st fakewa.MailboxStats) bool { return st.Pending == 0 })
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(storeFull).WithTimeout(30*time.Second).Should(BeFalse(), "the report clears once a row is written")
	rows := inboxRows(g, path)
	g.Expect(rows).To(HaveLen(2))
	g.Expect(rows[1].MessageID).To(Equal(sent.ID))
	g.Expect(text(g, rows[1])).To(Equal(big))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
