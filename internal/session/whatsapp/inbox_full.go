package whatsapp

import (
	"errors"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// storeFull reports an error that says the device store has no room: SQLite's SQLITE_FULL
// ("database or disk is full": the volume is full, or the database reached its page limit),
// ENOSPC, or Postgres's disk_full (SQLSTATE 53100). A message whose inbox row cannot be written
// for that reason is not acknowledged (WhatsApp keeps it and delivers it again), and the session
// says so in the EventsDelivering condition (StoreFull) until a row is written again.
func storeFull(err error) bool {
	var pgErr *pgconn.PgError
	return err != nil && (errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "database or disk is full") ||
		errors.As(err, &pgErr) && pgErr.Code == "53100")
}
