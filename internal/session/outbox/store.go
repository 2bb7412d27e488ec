// Package outbox is the session's durable queue of messages to send: one row per message, in the
// device-store database (SQLite on the session volume, or Postgres), written before the send API
// answers 202. A worker in the Lease holder sends the rows in order per chat, and WhatsApp's
// receipts move them on: queued → sending → sent → delivered → read, or failed with a reason.
//
// Rows hold message content (personal data): nothing in this package logs them.
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// State is where a message is on its way to the phone.
type State string

const (
	// Queued: stored, not yet handed to WhatsApp.
	Queued State = "queued"
	// Sending: handed to WhatsApp (at least once) without its acknowledgement yet; a send that
	// timed out waits here for its retry, with the same WhatsApp message id.
	Sending State = "sending"
	// Sent: WhatsApp's server acknowledged the message.
	Sent State = "sent"
	// Delivered: the recipient's phone sent a delivery receipt.
	Delivered State = "delivered"
	// Read: the recipient read it.
	Read State = "read"
	// Failed: WhatsApp refused the message, or every attempt timed out; Reason says which.
	Failed State = "failed"
)

// Errors of Submit and Get.
var (
	ErrNotFound = errors.New("outbox: no message with this id")
	// ErrConflict: the id is taken by a message with another recipient or text.
	ErrConflict = errors.New("outbox: the id is already used by a different message")
	// ErrFull: the outbox holds its bound of unfinished messages.
	ErrFull = errors.New("outbox: too many messages waiting to be sent")
)

// Message is one outbox row.
type Message struct {
	// Seq orders the rows (assigned on insert, increasing): the send order within a chat.
	Seq int64
	// ID is the caller's idempotency key (or one the API made up).
	ID string
	// WAID is the WhatsApp message id, fixed when the row is written, so that every attempt is
	// the same message to WhatsApp and to the phone.
	WAID string
	// To is the recipient chat's JID.
	To   string
	Text string

	State    State
	Attempts int
	// Reason is why the message failed, or what went wrong with the last attempt.
	Reason string

	CreatedAt, SentAt, DeliveredAt, ReadAt, FailedAt time.Time
	// NextAttemptAt is when a queued or sending row may be (re)sent.
	NextAttemptAt time.Time
}

// Store is the outbox table in the device-store database.
type Store struct {
	db      *sql.DB
	dialect string
	// Limit bounds the unfinished (queued or sending) rows; Submit answers ErrFull beyond it.
	Limit int

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // the worker's periodic reads, prepared once (see prepared)
}

// DefaultLimit is the default bound of unfinished messages: a day of sending at the default rate
// is far below it, and a full outbox is a caller's bug or a dead connection, not a workload.
const DefaultLimit = 10000

// tableColumns are the outbox's columns after its key, the same in both dialects.
const tableColumns = `
	id              TEXT    NOT NULL UNIQUE,
	wa_id           TEXT    NOT NULL UNIQUE,
	chat            TEXT    NOT NULL,
	text            TEXT    NOT NULL,
	state           TEXT    NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	reason          TEXT    NOT NULL DEFAULT '',
	created_at      BIGINT  NOT NULL,
	next_attempt_at BIGINT  NOT NULL,
	sent_at         BIGINT,
	delivered_at    BIGINT,
	read_at         BIGINT,
	failed_at       BIGINT
)`

const pendingIndex = `CREATE INDEX IF NOT EXISTS waoperator_outbox_pending ON waoperator_outbox (state, chat, seq)`

// schema differs between the dialects only in how the key counts up.
var schema = map[string][]string{
	"sqlite": {`CREATE TABLE IF NOT EXISTS waoperator_outbox (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,` + tableColumns, pendingIndex},
	"postgres": {`CREATE TABLE IF NOT EXISTS waoperator_outbox (
	seq             BIGSERIAL PRIMARY KEY,` + tableColumns, pendingIndex},
}

// Open creates the outbox table if it is missing. dialect is "sqlite" or "postgres".
func Open(ctx context.Context, db *sql.DB, dialect string) (*Store, error) {
	ddl, ok := schema[dialect]
	if !ok {
		return nil, fmt.Errorf("outbox: unsupported database dialect %q", dialect)
	}
	for _, stmt := range ddl {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("outbox: create table: %w", err)
		}
	}
	return &Store{db: db, dialect: dialect, Limit: DefaultLimit}, nil
}

const columns = `seq, id, wa_id, chat, text, state, attempts, reason, created_at, next_attempt_at,
	sent_at, delivered_at, read_at, failed_at`

// unfinished is the SQL list of states the worker still has to act on.
const unfinished = `('queued', 'sending')`

// Enqueue stores m (ID, WAID, To, Text) as queued unless a row with its id exists. The same id
// with the same recipient and text is the same message: Enqueue returns the stored row and
// created false. Once it returns nil the row is durable.
func (s *Store) Enqueue(ctx context.Context, m Message) (stored Message, created bool, err error) {
	if m.ID == "" || m.WAID == "" {
		return Message{}, false, errors.New("outbox: message without id")
	}
	if old, err := s.Get(ctx, m.ID); err == nil {
		return old, false, sameMessage(old, m)
	} else if !errors.Is(err, ErrNotFound) {
		return Message{}, false, err
	}
	var pending int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM waoperator_outbox WHERE state IN `+unfinished).Scan(&pending); err != nil {
		return Message{}, false, err
	}
	if s.Limit > 0 && pending >= s.Limit {
		return Message{}, false, ErrFull
	}
	now := time.Now().UnixMilli()
	if err := s.durably(ctx, func(conn *sql.Conn) error {
		_, err := conn.ExecContext(ctx, `INSERT INTO waoperator_outbox
			(id, wa_id, chat, text, state, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, 'queued', $5, $5)
			ON CONFLICT (id) DO NOTHING`, m.ID, m.WAID, m.To, m.Text, now)
		return err
	}); err != nil {
		return Message{}, false, err
	}
	stored, err = s.Get(ctx, m.ID)
	if err != nil {
		return Message{}, false, err
	}
	if stored.WAID != m.WAID {
		// A concurrent Enqueue with the same id won the insert.
		return stored, false, sameMessage(stored, m)
	}
	return stored, true, nil
}

func sameMessage(stored, m Message) error {
	if stored.To != m.To || stored.Text != m.Text {
		return ErrConflict
	}
	return nil
}

// durably runs write on one connection; on SQLite that connection commits with
// synchronous=FULL (the device store runs NORMAL, which skips the fsync), because a 202 promises
// the row survives a node crash.
func (s *Store) durably(ctx context.Context, write func(*sql.Conn) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	if s.dialect == "sqlite" {
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous=FULL"); err != nil {
			return err
		}
		defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous=NORMAL") }()
	}
	return write(conn)
}

// Get returns the row with the caller id id.
func (s *Store) Get(ctx context.Context, id string) (Message, error) {
	rows, err := s.query(ctx, `SELECT `+columns+` FROM waoperator_outbox WHERE id = $1`, id)
	if err != nil {
		return Message{}, err
	}
	if len(rows) == 0 {
		return Message{}, ErrNotFound
	}
	return rows[0], nil
}

// Recent returns up to limit rows, newest first.
func (s *Store) Recent(ctx context.Context, limit int) ([]Message, error) {
	return s.query(ctx, `SELECT `+columns+` FROM waoperator_outbox ORDER BY seq DESC LIMIT $1`, limit)
}

// Heads returns, for up to limit chats, the oldest unfinished row of the chat when it is due at
// now: the next message to send in each chat. A chat whose oldest unfinished row waits for a
// retry has no head, so nothing overtakes it.
func (s *Store) Heads(ctx context.Context, now time.Time, limit int) ([]Message, error) {
	stmt, err := s.prepared(ctx, headsQuery)
	if err != nil {
		return nil, err
	}
	rows, err := stmt.QueryContext(ctx, now.UnixMilli(), limit)
	return scanMessages(rows, err)
}

const headsQuery = `SELECT ` + columns + ` FROM waoperator_outbox o
		WHERE o.seq IN (SELECT MIN(seq) FROM waoperator_outbox WHERE state IN ` + unfinished + ` GROUP BY chat)
		AND o.next_attempt_at <= $1 ORDER BY o.seq LIMIT $2`

const nextDueQuery = `SELECT MIN(next_attempt_at) FROM waoperator_outbox WHERE state IN ` + unfinished

// prepared returns q prepared on the database, once per Store until closeStatements. The
// worker runs Heads and NextDue every few seconds while the session idles; parsing and
// planning them anew each time was most of the SQLite code an idle session ran, and the
// pages of that code are resident memory (docs/benchmarks.md, "Where the MiB go").
func (s *Store) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if stmt := s.stmts[q]; stmt != nil {
		return stmt, nil
	}
	stmt, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if s.stmts == nil {
		s.stmts = map[string]*sql.Stmt{}
	}
	s.stmts[q] = stmt
	return stmt, nil
}

// closeStatements closes what prepared made; the worker calls it when it stops.
func (s *Store) closeStatements() {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	for q, stmt := range s.stmts {
		_ = stmt.Close()
		delete(s.stmts, q)
	}
}

// NextDue is the earliest retry time of an unfinished row (zero when none waits).
func (s *Store) NextDue(ctx context.Context) (time.Time, error) {
	stmt, err := s.prepared(ctx, nextDueQuery)
	if err != nil {
		return time.Time{}, err
	}
	var next sql.NullInt64
	if err := stmt.QueryRowContext(ctx).Scan(&next); err != nil || !next.Valid {
		return time.Time{}, err
	}
	return time.UnixMilli(next.Int64), nil
}

// Pending counts the unfinished rows.
func (s *Store) Pending(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM waoperator_outbox WHERE state IN `+unfinished).Scan(&n)
	return n, err
}

// markSending records an attempt: the row is sending, its attempts counted.
func (s *Store) markSending(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE waoperator_outbox SET state = 'sending', attempts = attempts + 1
		WHERE id = $1 AND state IN `+unfinished, id)
	return err
}

// markSent records WhatsApp's acknowledgement. A receipt may have come first (it races the
// acknowledgement): then only the sent time is filled in.
func (s *Store) markSent(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE waoperator_outbox SET sent_at = COALESCE(sent_at, $2), reason = '',
		state = CASE WHEN state IN `+unfinished+` THEN 'sent' ELSE state END WHERE id = $1`, id, at.UnixMilli())
	return err
}

// retryLater keeps an unfinished row for another attempt at next; uncount takes back the
// attempt (the connection was down: WhatsApp never saw it).
func (s *Store) retryLater(ctx context.Context, id string, next time.Time, reason string, uncount bool) error {
	back := 0
	if uncount {
		back = 1
	}
	_, err := s.db.ExecContext(ctx, `UPDATE waoperator_outbox SET next_attempt_at = $2, reason = $3, attempts = attempts - $4
		WHERE id = $1 AND state IN `+unfinished, id, next.UnixMilli(), boundReason(reason), back)
	return err
}

// fail ends an unfinished row with reason.
func (s *Store) fail(ctx context.Context, id string, reason string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE waoperator_outbox SET state = 'failed', reason = $2, failed_at = $3
		WHERE id = $1 AND state IN `+unfinished, id, boundReason(reason), at.UnixMilli())
	return err
}

// maxReason bounds a stored reason (it comes from WhatsApp's client library).
const maxReason = 200

func boundReason(r string) string {
	if len(r) > maxReason {
		r = r[:maxReason]
	}
	return strings.ToValidUTF8(r, "")
}

// Receipt moves the rows with these WhatsApp ids forward: kind Delivered or Read. A receipt
// is the phone's word, so it also settles a row that was waiting for a retry or had failed
// (its acknowledgement was lost, not the message); it never moves a row back. It returns the
// caller ids of the rows it changed.
func (s *Store) Receipt(ctx context.Context, waIDs []string, kind State, at time.Time) ([]string, error) {
	if len(waIDs) == 0 {
		return nil, nil
	}
	var from string
	switch kind {
	case Delivered:
		from = `('sending', 'sent', 'failed')`
	case Read:
		from = `('sending', 'sent', 'delivered', 'failed')`
	default:
		return nil, fmt.Errorf("outbox: %q is not a receipt", kind)
	}
	// Placeholders $2… for the ids; the UPDATE's $1 is the time, and the SELECT passes a
	// dummy $1 so that both statements share the list.
	marks := make([]string, len(waIDs))
	args := []any{at.UnixMilli()}
	for i, id := range waIDs {
		marks[i] = fmt.Sprintf("$%d", i+2)
		args = append(args, id)
	}
	in := "(" + strings.Join(marks, ", ") + ")"
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, `SELECT id FROM waoperator_outbox WHERE CAST($1 AS BIGINT) IS NOT NULL AND wa_id IN `+in+` AND state IN `+from, args...)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			_ = rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	set := `sent_at = COALESCE(sent_at, $1), delivered_at = COALESCE(delivered_at, $1), state = 'delivered'`
	if kind == Read {
		set = `sent_at = COALESCE(sent_at, $1), delivered_at = COALESCE(delivered_at, $1), read_at = COALESCE(read_at, $1), state = 'read'`
	}
	if _, err := tx.ExecContext(ctx, `UPDATE waoperator_outbox SET `+set+`, reason = '', failed_at = NULL
		WHERE wa_id IN `+in+` AND state IN `+from, args...); err != nil {
		return nil, err
	}
	return ids, tx.Commit()
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]Message, error) {
	return scanMessages(s.db.QueryContext(ctx, q, args...))
}

// scanMessages reads the rows of a query of columns, and closes them.
func scanMessages(rows *sql.Rows, err error) ([]Message, error) {
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []Message
	for rows.Next() {
		var m Message
		var state string
		var created, next int64
		var sent, delivered, read, failed sql.NullInt64
		if err := rows.Scan(&m.Seq, &m.ID, &m.WAID, &m.To, &m.Text, &state, &m.Attempts, &m.Reason, &created, &next,
			&sent, &delivered, &read, &failed); err != nil {
			return nil, err
		}
		m.State = State(state)
		m.CreatedAt, m.NextAttemptAt = time.UnixMilli(created), time.UnixMilli(next)
		m.SentAt, m.DeliveredAt, m.ReadAt, m.FailedAt = ms(sent), ms(delivered), ms(read), ms(failed)
		out = append(out, m)
	}
	return out, rows.Err()
}

func ms(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64)
}
