package inbox

import (
	"context"
	"time"
)

// Summary is an event without its content: what `kubectl whatsapp events` shows.
type Summary struct {
	Seq        int64
	ID, Type   string
	Chat       string
	ReceivedAt time.Time
}

// Recent returns the last limit events, newest first, without their data.
func (s *Store) Recent(ctx context.Context, limit int) ([]Summary, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, event_id, type, chat, received_at
		FROM waoperator_inbox ORDER BY seq DESC LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []Summary
	for rows.Next() {
		var e Summary
		var received int64
		if err := rows.Scan(&e.Seq, &e.ID, &e.Type, &e.Chat, &received); err != nil {
			return nil, err
		}
		e.ReceivedAt = time.UnixMilli(received)
		out = append(out, e)
	}
	return out, rows.Err()
}
