package outbox_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
)

// countingDriver is SQLite that counts the statements it is asked to prepare. Its connections
// offer only Prepare, so database/sql prepares every query through it: the count is the number
// of times SQLite parsed and planned a statement.
type countingDriver struct{ prepares atomic.Int32 }

func (d *countingDriver) Open(name string) (driver.Conn, error) {
	c, err := (&sqlite.Driver{}).Open(name)
	if err != nil {
		return nil, err
	}
	return countingConn{c, d}, nil
}

type countingConn struct {
	driver.Conn
	d *countingDriver
}

func (c countingConn) Prepare(q string) (driver.Stmt, error) {
	c.d.prepares.Add(1)
	return c.Conn.Prepare(q)
}

var counting = &countingDriver{}

func init() { sql.Register("sqlite-counting", counting) }

// The worker reads the outbox's heads and its next due time every few seconds while the
// session idles. Each read parsed and planned its statement anew, which was most of the SQLite
// code an idle session ran, and that code's pages are resident memory: the reads are prepared
// once, and still see every change.
func TestTheWorkersPeriodicReadsArePreparedOnceAndSeeNewRows(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite-counting", "file:"+filepath.Join(t.TempDir(), "device.db")+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(1)
	s, err := outbox.Open(ctx, db, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	before := counting.prepares.Load()
	for range 10 {
		if heads, err := s.Heads(ctx, time.Now(), 16); err != nil || len(heads) != 0 {
			t.Fatalf("heads of an empty outbox: %v, %v", heads, err)
		}
		if next, err := s.NextDue(ctx); err != nil || !next.IsZero() {
			t.Fatalf("next due of an empty outbox: %v, %v", next, err)
		}
	}
	if n := counting.prepares.Load() - before; n > 2 {
		t.Errorf("10 polls of heads and next due prepared %d statements, want the 2 once", n)
	}
	if _, _, err := s.Enqueue(ctx, outbox.Message{ID: "a", WAID: "3EB0A", To: "491701234567@s.whatsapp.net", Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	heads, err := s.Heads(ctx, time.Now().Add(time.Second), 16)
	if err != nil || len(heads) != 1 || heads[0].ID != "a" {
		t.Fatalf("heads after a message was queued: %+v, %v", heads, err)
	}
	if next, err := s.NextDue(ctx); err != nil || next.IsZero() {
		t.Errorf("next due after a message was queued: %v, %v", next, err)
	}
}
