package events

import (
	"context"
	"database/sql"
	"fmt"
)

// Cursors keeps each sink's cursor (the inbox sequence up to which every event was delivered,
// filtered out or given up on) in the device-store database, next to the inbox.
type Cursors struct{ db *sql.DB }

// OpenCursors creates the cursor table if it is missing (same DDL for SQLite and Postgres).
func OpenCursors(ctx context.Context, db *sql.DB) (*Cursors, error) {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS waoperator_sink_cursor (
	sink TEXT   PRIMARY KEY,
	seq  BIGINT NOT NULL
)`)
	if err != nil {
		return nil, fmt.Errorf("sink cursors: create table: %w", err)
	}
	return &Cursors{db: db}, nil
}

// Get returns the sink's cursor, 0 for a sink never delivered to.
func (c *Cursors) Get(ctx context.Context, sink string) (int64, error) {
	var seq int64
	err := c.db.QueryRowContext(ctx, `SELECT seq FROM waoperator_sink_cursor WHERE sink = $1`, sink).Scan(&seq)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return seq, err
}

// Set moves the sink's cursor forward (never back).
func (c *Cursors) Set(ctx context.Context, sink string, seq int64) error {
	_, err := c.db.ExecContext(ctx, `INSERT INTO waoperator_sink_cursor (sink, seq) VALUES ($1, $2)
		ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq WHERE waoperator_sink_cursor.seq < excluded.seq`, sink, seq)
	return err
}
