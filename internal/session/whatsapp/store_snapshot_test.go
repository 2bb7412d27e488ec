package whatsapp

import (
	"context"
	"database/sql"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow"

	"github.com/waoperator/whatsapp-operator/internal/session"
)

// schemaDump is what a store's schema is: sqlite_master's entries, user_version, and the rows
// of every version table (whatsmeow's upgrade level).
type schemaDump struct {
	Master      []string
	UserVersion int
	Versions    map[string][]string
}

func dumpSchema(g *WithT, path string) schemaDump {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = db.Close() }()
	strings := func(query string) []string {
		rows, err := db.Query(query)
		g.Expect(err).NotTo(HaveOccurred())
		defer func() { _ = rows.Close() }()
		var out []string
		for rows.Next() {
			var s string
			g.Expect(rows.Scan(&s)).To(Succeed())
			out = append(out, s)
		}
		g.Expect(rows.Err()).NotTo(HaveOccurred())
		return out
	}
	d := schemaDump{Versions: map[string][]string{}}
	d.Master = strings(`SELECT type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, '') FROM sqlite_master ORDER BY type, name`)
	g.Expect(db.QueryRow("PRAGMA user_version").Scan(&d.UserVersion)).To(Succeed())
	for _, table := range strings(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%version' ORDER BY name`) {
		d.Versions[table] = strings(`SELECT json_array(*) FROM (SELECT * FROM "` + table + `") ORDER BY 1`)
	}
	return d
}

// The committed snapshot is the database the real migrations make today: a whatsmeow bump that
// adds an upgrade, or a table of the project's, fails here until `make generate` is run.
func TestSchemaSnapshotIsWhatTheMigrationsMake(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	migrated, seeded := filepath.Join(dir, "migrated.db"), filepath.Join(dir, "seeded.db")
	g.Expect(MigrateNewSQLiteStore(context.Background(), migrated)).To(Succeed())
	g.Expect(seedSQLiteStore(seeded, schemaSnapshot)).To(BeTrue())

	want := dumpSchema(g, migrated)
	g.Expect(want.Master).To(ContainElement(HavePrefix("table whatsmeow_device ")))
	g.Expect(want.Master).To(ContainElement(HavePrefix("table waoperator_inbox ")))
	g.Expect(want.Versions).To(HaveKeyWithValue("whatsmeow_version", HaveLen(1)))
	g.Expect(dumpSchema(g, seeded)).To(Equal(want),
		"the schema snapshot is stale: run `make generate` (hack/sqlite-schema-snapshot) and commit %s", "zz_generated.store_snapshot.go")
}

// A session's first open of a new SQLite store starts from the snapshot and changes no schema:
// no CREATE runs (the schema cookie stays the snapshot's), and the store is usable.
func TestNewSQLiteStoreStartsFromTheSnapshot(t *testing.T) {
	g := NewWithT(t)
	path := filepath.Join(t.TempDir(), "device.db")
	c := openNewStore(g, path, true)
	g.Expect(c.IsLoggedIn()).To(BeFalse())
	g.Expect(c.Close()).To(Succeed())

	var cookie int
	db, err := sql.Open("sqlite", SQLiteDSN(path))
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = db.Close() }()
	g.Expect(db.QueryRow("PRAGMA schema_version").Scan(&cookie)).To(Succeed())
	g.Expect(cookie).To(BeEquivalentTo(binary.BigEndian.Uint32(schemaSnapshot.bytes()[40:44])),
		"the first open changed the snapshot's schema")
	var owner string
	g.Expect(db.QueryRow("SELECT namespace || '/' || name FROM " + ownerTable).Scan(&owner)).To(Succeed())
	g.Expect(owner).To(Equal("ns/conn"))
}

// The snapshot is never written over a database, nor next to a journal or WAL that SQLite would
// apply to it.
func TestSchemaSnapshotNeverReplacesAStore(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()

	used := filepath.Join(dir, "used.db")
	c := openNewStore(g, used, false)
	g.Expect(c.Close()).To(Succeed())
	before, err := os.ReadFile(used)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(seedSQLiteStore(used, schemaSnapshot)).To(BeFalse())
	g.Expect(os.ReadFile(used)).To(Equal(before))

	empty := filepath.Join(dir, "empty.db")
	g.Expect(os.WriteFile(empty, nil, 0o600)).To(Succeed())
	g.Expect(seedSQLiteStore(empty, schemaSnapshot)).To(BeFalse())
	g.Expect(os.ReadFile(empty)).To(BeEmpty())

	for _, leftover := range []string{"-wal", "-journal"} {
		path := filepath.Join(dir, "leftover"+leftover+".db")
		g.Expect(os.WriteFile(path+leftover, []byte("not ours"), 0o600)).To(Succeed())
		g.Expect(seedSQLiteStore(path, schemaSnapshot)).To(BeFalse())
		g.Expect(path).NotTo(BeAnExistingFile())
	}
	entries, err := os.ReadDir(dir)
	g.Expect(err).NotTo(HaveOccurred())
	for _, e := range entries {
		g.Expect(e.Name()).NotTo(ContainSubstring(".snapshot-"), "a temporary file was left")
	}
}

// openNewStore opens the store at path as a session does, with or without the snapshot.
func openNewStore(g Gomega, path string, snapshot bool) session.Client {
	o := Opener{Store: session.StoreConfig{Type: "sqlite", SQLitePath: path}, Owner: StoreOwner{"ns", "conn"},
		Configure: func(*whatsmeow.Client) error { return nil }, noSchemaSnapshot: !snapshot}
	c, err := o.Open(context.Background(), logr.Discard(), func(error) bool { return false })
	g.Expect(err).NotTo(HaveOccurred())
	return c
}
