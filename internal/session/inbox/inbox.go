// Package inbox is the session's durable record of what WhatsApp delivered to the device: one
// row per event, in the device-store database (SQLite on the session volume, or Postgres),
// written before WhatsApp is told the message was received. An event's id is derived from
// WhatsApp's own identifiers, so a redelivered message is the same row, never a second event.
//
// Rows hold message content (personal data): nothing in this package logs them.
package inbox

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Event types, as stored; the CloudEvents type is "io.waoperator.whatsapp." + Type.
const (
	TypeMessage       = "message.received"
	TypeUndecryptable = "message.undecryptable"
	TypeReceipt       = "message.receipt"
)

// Event is one inbox row.
type Event struct {
	// Seq orders the connection's events (assigned on insert, increasing).
	Seq int64
	// ID is stable across redeliveries: see EventID.
	ID   string
	Type string
	// Chat and Sender are WhatsApp JIDs; MessageID is WhatsApp's message id.
	Chat, Sender, MessageID string
	// Time is WhatsApp's timestamp of the message; ReceivedAt when the row was written.
	Time, ReceivedAt time.Time
	// Data is the event's JSON body (content included).
	Data []byte
}

// EventID derives an event's id from what identifies it in WhatsApp: a message id is unique
// per sender and chat, and a receipt is about a message id. The hash keeps phone numbers out
// of ids, which appear in logs.
func EventID(typ, chat, sender, messageID string) string {
	sum := sha256.Sum256([]byte(typ + "\x00" + chat + "\x00" + sender + "\x00" + messageID))
	return hex.EncodeToString(sum[:16])
}

// Store is the inbox table in the device-store database.
type Store struct {
	db      *sql.DB
	dialect string

	// BeforeCommit and AfterCommit, when set, run inside Put around the commit of a new row.
	// Only tests set them (to kill the process at exactly that point).
	BeforeCommit, AfterCommit func(Event)
	// OnConn, when set, runs on Put's connection before the insert, and what it returns after
	// Put. Only tests set it (to cap that connection's database size, PRAGMA max_page_count, so
	// that the insert meets a real "database or disk is full").
	OnConn func(ctx context.Context, conn *sql.Conn) (after func())
}

// createTable is the inbox's DDL: the dialects differ only in how the key counts up and in
// what the bytes type is called.
func createTable(key, bytes string) string {
	return `CREATE TABLE IF NOT EXISTS waoperator_inbox (
	seq         ` + key + `,
	event_id    TEXT    NOT NULL UNIQUE,
	type        TEXT    NOT NULL,
	chat        TEXT    NOT NULL,
	sender      TEXT    NOT NULL,
	message_id  TEXT    NOT NULL,
	ts          BIGINT  NOT NULL,
	received_at BIGINT  NOT NULL,
	data        ` + bytes + ` NOT NULL
)`
}

var schema = map[string]string{
	"sqlite":   createTable("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
	"postgres": createTable("BIGSERIAL PRIMARY KEY", "BYTEA"),
}

// Open creates the inbox table if it is missing. dialect is "sqlite" or "postgres".
func Open(ctx context.Context, db *sql.DB, dialect string) (*Store, error) {
	ddl, ok := schema[dialect]
	if !ok {
		return nil, fmt.Errorf("inbox: unsupported database dialect %q", dialect)
	}
	if _, err := db.ExecContext(ctx, ddl); err != nil {
		return nil, fmt.Errorf("inbox: create table: %w", err)
	}
	return &Store{db: db, dialect: dialect}, nil
}

// Put stores ev unless an event with its id is already there. It reports whether a new row was
// written; either way, once it returns nil the event is durable.
func (s *Store) Put(ctx context.Context, ev Event) (stored bool, err error) {
	if ev.ID == "" {
		return false, errors.New("inbox: event without id")
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = time.Now()
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = conn.Close() }()
	if s.OnConn != nil {
		if after := s.OnConn(ctx, conn); after != nil {
			defer after()
		}
	}
	if s.dialect == "sqlite" {
		// The device store runs SQLite with synchronous NORMAL (no fsync per commit); a row whose
		// receipt WhatsApp is about to get must survive a node crash, so this commit syncs the
		// WAL, and with it every commit before it (the Signal session state that decrypted it).
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous=FULL"); err != nil {
			return false, err
		}
		defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous=NORMAL") }()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	res, err := tx.ExecContext(ctx, `INSERT INTO waoperator_inbox
		(event_id, type, chat, sender, message_id, ts, received_at, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING`,
		ev.ID, ev.Type, ev.Chat, ev.Sender, ev.MessageID, ev.Time.UnixMilli(), ev.ReceivedAt.UnixMilli(), ev.Data)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n > 0 && s.BeforeCommit != nil {
		s.BeforeCommit(ev)
	}
	if err = tx.Commit(); err != nil {
		return false, err
	}
	if n > 0 && s.AfterCommit != nil {
		s.AfterCommit(ev)
	}
	return n > 0, nil
}

// After returns up to limit events with Seq > seq, in Seq order.
func (s *Store) After(ctx context.Context, seq int64, limit int) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, event_id, type, chat, sender, message_id, ts, received_at, data
		FROM waoperator_inbox WHERE seq > $1 ORDER BY seq LIMIT $2`, seq, limit)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []Event
	for rows.Next() {
		var ev Event
		var ts, received int64
		if err := rows.Scan(&ev.Seq, &ev.ID, &ev.Type, &ev.Chat, &ev.Sender, &ev.MessageID, &ts, &received, &ev.Data); err != nil {
			return nil, err
		}
		ev.Time, ev.ReceivedAt = time.UnixMilli(ts), time.UnixMilli(received)
		out = append(out, ev)
	}
	return out, rows.Err()
}

// Backlog counts the events after seq and returns when the oldest of them reached the inbox
// (zero time when there is none).
func (s *Store) Backlog(ctx context.Context, seq int64) (int64, time.Time, error) {
	var n int64
	var oldest sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(received_at) FROM waoperator_inbox WHERE seq > $1`, seq).Scan(&n, &oldest)
	if err != nil || !oldest.Valid {
		return n, time.Time{}, err
	}
	return n, time.UnixMilli(oldest.Int64), nil
}

// Prune deletes events that reached the inbox before cutoff and whose seq is at most upTo (the
// lowest sink cursor: nothing a sink still has to get is deleted). It returns how many it deleted.
func (s *Store) Prune(ctx context.Context, cutoff time.Time, upTo int64) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM waoperator_inbox WHERE received_at < $1 AND seq <= $2`, cutoff.UnixMilli(), upTo)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
