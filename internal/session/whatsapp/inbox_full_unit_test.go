package whatsapp

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestStoreFullRecognisesEveryFullStore(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"SQLite SQLITE_FULL":        {errors.New("database or disk is full (13)"), true},
		"ENOSPC from the volume":    {fmt.Errorf("write inbox: %w", syscall.ENOSPC), true},
		"Postgres disk_full":        {fmt.Errorf("insert: %w", &pgconn.PgError{Code: "53100"}), true},
		"Postgres another SQLSTATE": {&pgconn.PgError{Code: "23505"}, false},
		"SQLite busy":               {errors.New("database is locked (5) (SQLITE_BUSY)"), false},
		"no error":                  {nil, false},
	} {
		if got := storeFull(tc.err); got != tc.want {
			t.Errorf("%s: storeFull = %v, want %v", name, got, tc.want)
		}
	}
}
