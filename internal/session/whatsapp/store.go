package whatsapp

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go (CGO_ENABLED=0)

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// SQLiteDSN is the modernc.org/sqlite DSN for the device database at path. modernc takes
// pragmas as _pragma=name(value); mattn-style _foreign_keys=on is silently ignored by it.
// Transactions begin IMMEDIATE: a deferred one that reads and then writes (whatsmeow's
// decryption saves the sender's identity inside one) fails at once with SQLITE_BUSY when another
// connection wrote meanwhile, busy_timeout or not, and a message that failed to decrypt that way
// is acknowledged to WhatsApp as undecryptable.
//
// synchronous(NORMAL), as whatsmeow's own sqlite3-fk-wal driver sets it: in WAL mode a commit
// then appends to the WAL without an fsync (the WAL is synced at checkpoints), so the database
// stays consistent on any crash, and only an OS crash or power loss can drop the last commits.
// With the default FULL every autocommit fsyncs, and whatsmeow's first login inserts 812
// pre-keys one statement each before it reports Connected: scan → Connected took 0.8–3.8 s
// on a loaded node, 0.25–0.7 s with NORMAL (docs/benchmarks.md, "scan → Connected").
// What WhatsApp is told we have (an inbox row before its receipt) is still fsynced: the inbox
// commits with synchronous FULL, which syncs the whole WAL, every earlier commit included.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// OpenStore opens (and migrates) the device store. Its errors say where the store is, since
// that is what a person has to fix (a volume without write permission, a wrong DSN).
func OpenStore(ctx context.Context, cfg session.StoreConfig, log waLog.Logger) (*sqlstore.Container, error) {
	c, _, _, err := openStore(ctx, cfg, log)
	return c, err
}

// openStore is OpenStore that also returns the database and its dialect, which the inbox
// shares with the device store.
func openStore(ctx context.Context, cfg session.StoreConfig, log waLog.Logger) (*sqlstore.Container, *sql.DB, string, error) {
	switch cfg.Type {
	case "", "sqlite":
		if cfg.SQLitePath == "" {
			return nil, nil, "", fmt.Errorf("%s is not set", sessionenv.SQLitePath)
		}
		db, err := sql.Open("sqlite", SQLiteDSN(cfg.SQLitePath))
		if err == nil {
			c := sqlstore.NewWithDB(db, "sqlite", log)
			if err = c.Upgrade(ctx); err == nil {
				return c, db, "sqlite", nil
			}
			_ = db.Close()
		}
		return nil, nil, "", fmt.Errorf("cannot open the SQLite device store at %s: %w", cfg.SQLitePath, err)
	case "postgres":
		if cfg.PostgresDSN == "" {
			return nil, nil, "", fmt.Errorf("%s is not set", sessionenv.PostgresDSN)
		}
		db, err := sql.Open("pgx", cfg.PostgresDSN)
		if err != nil {
			return nil, nil, "", fmt.Errorf("cannot open the Postgres device store (%s): %w", sessionenv.PostgresDSN, err)
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c := sqlstore.NewWithDB(db, "postgres", log)
		if err := c.Upgrade(pctx); err != nil {
			_ = db.Close()
			return nil, nil, "", fmt.Errorf("cannot open the Postgres device store (%s): %w", sessionenv.PostgresDSN, err)
		}
		return c, db, "postgres", nil
	default:
		return nil, nil, "", fmt.Errorf("%s=%q: the store type must be sqlite or postgres", sessionenv.StoreType, cfg.Type)
	}
}
