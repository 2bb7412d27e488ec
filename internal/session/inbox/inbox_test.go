package inbox_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	_ "modernc.org/sqlite"

	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
)

func openSQLite(t *testing.T) *inbox.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "device.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := inbox.Open(context.Background(), db, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func event(msgID, text string) inbox.Event {
	chat := "15550001111@s.whatsapp.net"
	return inbox.Event{
		ID:   inbox.EventID(inbox.TypeMessage, chat, chat, msgID),
		Type: inbox.TypeMessage, Chat: chat, Sender: chat, MessageID: msgID,
		Time: time.Unix(1700000000, 0), Data: []byte(`{"text":"` + text + `"}`),
	}
}

func TestPutIsIdempotentOnTheEventID(t *testing.T) {
	g := NewWithT(t)
	s := openSQLite(t)
	ctx := context.Background()

	stored, err := s.Put(ctx, event("3EB0A", "one"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(stored).To(BeTrue())
	stored, err = s.Put(ctx, event("3EB0A", "one, redelivered"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(stored).To(BeFalse(), "a redelivery is not a second event")
	stored, err = s.Put(ctx, event("3EB0B", "two"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(stored).To(BeTrue())

	rows, err := s.After(ctx, 0, 10)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rows).To(HaveLen(2))
	g.Expect(rows[0].MessageID).To(Equal("3EB0A"))
	g.Expect(string(rows[0].Data)).To(Equal(`{"text":"one"}`), "the first write stands")
	g.Expect(rows[1].MessageID).To(Equal("3EB0B"))
	g.Expect(rows[1].Seq).To(BeNumerically(">", rows[0].Seq))
	g.Expect(rows[0].Time).To(Equal(time.Unix(1700000000, 0)))

	after, err := s.After(ctx, rows[0].Seq, 10)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(after).To(HaveLen(1))
	g.Expect(after[0].MessageID).To(Equal("3EB0B"))
}

func TestEventIDDependsOnEveryPartAndHidesThem(t *testing.T) {
	g := NewWithT(t)
	base := inbox.EventID(inbox.TypeMessage, "1555@s.whatsapp.net", "1555@s.whatsapp.net", "3EB0A")
	g.Expect(base).To(Equal(inbox.EventID(inbox.TypeMessage, "1555@s.whatsapp.net", "1555@s.whatsapp.net", "3EB0A")))
	g.Expect(base).NotTo(ContainSubstring("1555"))
	for _, other := range []string{
		inbox.EventID(inbox.TypeUndecryptable, "1555@s.whatsapp.net", "1555@s.whatsapp.net", "3EB0A"),
		inbox.EventID(inbox.TypeMessage, "1556@s.whatsapp.net", "1555@s.whatsapp.net", "3EB0A"),
		inbox.EventID(inbox.TypeMessage, "1555@s.whatsapp.net", "1556@s.whatsapp.net", "3EB0A"),
		inbox.EventID(inbox.TypeMessage, "1555@s.whatsapp.net", "1555@s.whatsapp.net", "3EB0B"),
	} {
		g.Expect(other).NotTo(Equal(base))
	}
}

func TestOpenRejectsAnUnknownDialect(t *testing.T) {
	g := NewWithT(t)
	_, err := inbox.Open(context.Background(), nil, "mysql")
	g.Expect(err).To(MatchError(ContainSubstring(`unsupported database dialect "mysql"`)))
}

func TestPruneKeepsRecentAndUndeliveredEvents(t *testing.T) {
	g := NewWithT(t)
	s := openSQLite(t)
	ctx := context.Background()
	for i, age := range []time.Duration{72 * time.Hour, 48 * time.Hour, 47 * time.Hour, time.Hour} {
		ev := event("3EB0"+string(rune('A'+i)), "x")
		ev.ReceivedAt = time.Now().Add(-age)
		_, err := s.Put(ctx, ev)
		g.Expect(err).NotTo(HaveOccurred())
	}
	// Retention 47.5 h; a sink has everything up to seq 1: only the first row may go.
	n, err := s.Prune(ctx, time.Now().Add(-47*time.Hour-30*time.Minute), 1)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(BeEquivalentTo(1))
	// Every sink has everything: the other row older than the retention goes too.
	n, err = s.Prune(ctx, time.Now().Add(-47*time.Hour-30*time.Minute), 1<<62)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(BeEquivalentTo(1))
	rows, err := s.After(ctx, 0, 10)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rows).To(HaveLen(2))
	g.Expect(rows[0].MessageID).To(Equal("3EB0C"))
}
