package outbox_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
)

// databases are the stores every store test runs on: SQLite always, Postgres in a build with
// the postgres tag (postgres_test.go).
var databases = map[string]func(t *testing.T) *sql.DB{
	"sqlite": func(t *testing.T) *sql.DB {
		path := filepath.Join(t.TempDir(), "device.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	},
}

// eachDatabase runs test once per database.
func eachDatabase(t *testing.T, test func(t *testing.T, s *outbox.Store)) {
	for name, open := range databases {
		t.Run(name, func(t *testing.T) {
			s, err := outbox.Open(context.Background(), open(t), name)
			if err != nil {
				t.Fatal(err)
			}
			test(t, s)
		})
	}
}
