package whatsapp_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
)

// The device store's connection settings are what whatsmeow's own SQLite driver uses: foreign
// keys (whatsmeow relies on cascades), WAL, and synchronous NORMAL, without which every one of
// the first login's 812 pre-key inserts waits for an fsync before the session is Connected.
func TestSQLiteStoreSettings(t *testing.T) {
	g := NewWithT(t)
	path := filepath.Join(t.TempDir(), "device.db")
	c, err := whatsapp.OpenStore(context.Background(), session.StoreConfig{Type: "sqlite", SQLitePath: path}, waLog.Noop)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = c.Close() })

	db, err := sql.Open("sqlite", whatsapp.SQLiteDSN(path))
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = db.Close() })
	pragma := func(name string) string {
		var v string
		g.Expect(db.QueryRow("PRAGMA " + name).Scan(&v)).To(Succeed())
		return v
	}
	g.Expect(pragma("foreign_keys")).To(Equal("1"))
	g.Expect(pragma("journal_mode")).To(Equal("wal"))
	g.Expect(pragma("synchronous")).To(Equal("1"), "NORMAL")
	g.Expect(pragma("busy_timeout")).To(Equal("5000"))
}
