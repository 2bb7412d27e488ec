package whatsapp_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// outboxRows reads the outbox of the store at path with a connection of its own.
func outboxRows(g Gomega, path string) map[string]outbox.Message {
	db, err := sql.Open("sqlite", dsn(path))
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = db.Close() }()
	store, err := outbox.Open(context.Background(), db, "sqlite")
	g.Expect(err).NotTo(HaveOccurred())
	rows, err := store.Recent(context.Background(), 10000)
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]outbox.Message{}
	for _, m := range rows {
		out[m.ID] = m
	}
	return out
}

func TestOutboxSendsEveryMessageOnceThroughThreeKills(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv, path, waConfig, _ := startPairedForChild(t, "15550009101")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// 300 messages to 3 phones, queued as the send API queues them.
	phones := []*fakewa.Phone{srv.Phone("15550009102"), srv.Phone("15550009103"), srv.Phone("15550009104")}
	const perPhone = 100
	db, err := sql.Open("sqlite", dsn(path))
	g.Expect(err).NotTo(HaveOccurred())
	store, err := outbox.Open(ctx, db, "sqlite")
	g.Expect(err).NotTo(HaveOccurred())
	for i := range perPhone {
		for _, p := range phones {
			id := fmt.Sprintf("%s-%03d", p.Number(), i)
			_, _, err := store.Enqueue(ctx, outbox.Message{ID: id, WAID: outbox.NewWAID(), To: p.JID().String(), Text: id})
			g.Expect(err).NotTo(HaveOccurred())
		}
	}
	g.Expect(db.Close()).To(Succeed())

	received := func() int {
		n := 0
		for _, p := range phones {
			n += len(p.Received())
		}
		return n
	}
	// Three session processes are SIGKILLed in the middle of the send, a fourth finishes it.
	for _, killAt := range []int{40, 120, 200} {
		c := startChild(t, path, waConfig, "")
		g.Eventually(received).WithTimeout(time.Minute).WithPolling(time.Millisecond).Should(BeNumerically(">=", killAt))
		g.Expect(c.cmd.Process.Kill()).To(Succeed())
		<-c.done
	}
	last := startChild(t, path, waConfig, "")
	g.Eventually(func() int {
		delivered := 0
		for _, m := range outboxRows(g, path) {
			if m.State == outbox.Delivered {
				delivered++
			}
		}
		return delivered
	}).WithTimeout(2 * time.Minute).WithPolling(200 * time.Millisecond).Should(Equal(3 * perPhone))
	g.Expect(last.cmd.Process.Kill()).To(Succeed())
	<-last.done

	rows := outboxRows(g, path)
	resent := 0
	for _, p := range phones {
		got := p.Received()
		g.Expect(got).To(HaveLen(perPhone), "every message on the phone, none twice")
		for i, m := range got {
			id := fmt.Sprintf("%s-%03d", p.Number(), i)
			g.Expect(m.Text).To(Equal(id), "in order")
			g.Expect(m.ID).To(Equal(rows[id].WAID), "with the outbox's WhatsApp id")
			resent += m.Copies - 1
		}
		g.Expect(p.InboxStats().DecryptFailures).To(BeZero())
	}
	// A message the killed process had sent without recording it is sent again with its id:
	// the phone sees the same message again (recorded once), as a real phone deduplicates.
	t.Logf("messages the phones got more than once after a kill: %d of %d", resent, 3*perPhone)
}
