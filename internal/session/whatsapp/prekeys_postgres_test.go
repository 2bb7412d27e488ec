//go:build postgres

package whatsapp

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/internal/session"
)

// The pool's one-transaction insert on Postgres (a database of its own: whatsmeow's migration
// wants an empty one). DSN: WAOPERATOR_TEST_POSTGRES_DSN=$(hack/postgres-test.sh).
func TestFirstLoginTakesThePoolsPreKeysOnPostgres(t *testing.T) {
	g := NewWithT(t)
	dsn := os.Getenv("WAOPERATOR_TEST_POSTGRES_DSN")
	g.Expect(dsn).NotTo(BeEmpty(), "WAOPERATOR_TEST_POSTGRES_DSN is not set: run DSN=$(hack/postgres-test.sh) first")
	db, err := sql.Open("pgx", dsn)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = db.Close() }()
	name := fmt.Sprintf("prekeys_%d", time.Now().UnixNano())
	_, err = db.ExecContext(context.Background(), "CREATE DATABASE "+name)
	g.Expect(err).NotTo(HaveOccurred())
	u, err := url.Parse(dsn)
	g.Expect(err).NotTo(HaveOccurred())
	u.Path = "/" + name
	sqlStore, pooled := pairedStore(t, g, session.StoreConfig{Type: "postgres", PostgresDSN: u.String()})
	firstLoginTakesThePoolsPreKeys(g, sqlStore, pooled)
}
