package whatsapp

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"

	"github.com/go-logr/logr"
	"go.mau.fi/whatsmeow"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// A new SQLite device store starts from a schema snapshot: the empty database that whatsmeow's
// Upgrade and the project's own tables make on a first open, written to the path before SQLite
// opens it, so that the open only reads the versions. Executing those ~25 CREATE statements
// cost a session 6 ms of CPU of its ~50 until its QR code (docs/benchmarks.md, "Sixth round").
//
// The snapshot (zz_generated.store_snapshot.go) is made by hack/sqlite-schema-snapshot, which
// runs MigrateNewSQLiteStore, i.e. the real migrations; TestSchemaSnapshotIsWhatTheMigrationsMake
// fails when it differs from what they make now (a whatsmeow bump with a new upgrade, a new
// table of the project's), until `make generate` is run.

// snapshotChunk is a run of the snapshot's bytes at off; the bytes between chunks are zero.
type snapshotChunk struct {
	off  int
	data string
}

// sqliteSnapshot is an SQLite database file, kept as its non-zero runs: an empty table's page
// is a few bytes of header and 4 KiB of zeros.
type sqliteSnapshot struct {
	size   int
	chunks []snapshotChunk
}

func (s sqliteSnapshot) bytes() []byte {
	b := make([]byte, s.size)
	for _, c := range s.chunks {
		copy(b[c.off:], c.data)
	}
	return b
}

// seedSQLiteStore writes the schema snapshot to path when there is no database there: no file
// at path, and no rollback journal or WAL that SQLite would apply to it. It never replaces a
// file: the snapshot is linked into place, which fails when a file appeared meanwhile. Any
// failure leaves the path as it was, and the open goes on as without a snapshot (SQLite then
// makes the database and reports what stops it, classified as before).
func seedSQLiteStore(path string, snap sqliteSnapshot) (seeded bool) {
	if snap.size == 0 {
		return false // none generated
	}
	for _, p := range []string{path, path + "-wal", path + "-journal"} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	tmp := path + ".snapshot-" + hex.EncodeToString(suffix[:])
	// 0644 before the umask, as SQLite creates a database file.
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return false
	}
	defer func() { _ = os.Remove(tmp) }()
	_, err = f.Write(snap.bytes())
	if err == nil {
		// On disk before its name is: a crash must not leave a named, partly written database.
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false
	}
	return os.Link(tmp, path) == nil
}

// MigrateNewSQLiteStore makes at path, which must not exist, the database a session's first
// open of a new SQLite store makes without the snapshot: every migration that Opener.Open runs
// (whatsmeow's Upgrade, the owner record's, inbox's, sink cursors' and outbox's tables), and no
// rows but the versions. For the snapshot's generator and its test.
func MigrateNewSQLiteStore(ctx context.Context, path string) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return errors.New(path + " exists")
	}
	owner := StoreOwner{Namespace: "snapshot", Name: "snapshot"}
	o := Opener{Store: session.StoreConfig{Type: sessionenv.StoreSQLite, SQLitePath: path}, Owner: owner,
		Configure: func(*whatsmeow.Client) error { return nil }, noSchemaSnapshot: true}
	c, err := o.Open(ctx, logr.Discard(), func(error) bool { return false })
	if err != nil {
		return err
	}
	if err := c.Close(); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", SQLiteDSN(path))
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	return releaseStore(ctx, db, owner)
}
