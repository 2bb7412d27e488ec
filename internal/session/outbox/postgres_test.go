//go:build postgres

package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

var pgSeq atomic.Int64

// A database of its own per test on the server hack/postgres-test.sh started.
func init() {
	databases["postgres"] = func(t *testing.T) *sql.DB {
		dsn := os.Getenv("WAOPERATOR_TEST_POSTGRES_DSN")
		if dsn == "" {
			t.Fatal("WAOPERATOR_TEST_POSTGRES_DSN is not set: run DSN=$(hack/postgres-test.sh) first")
		}
		admin, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		name := fmt.Sprintf("outbox_%d_%d", os.Getpid(), pgSeq.Add(1))
		ctx := context.Background()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		db, err := sql.Open("pgx", u.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
}
