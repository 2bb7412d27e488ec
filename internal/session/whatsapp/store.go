package whatsapp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
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

// storeOpenTimeout bounds one attempt to reach and migrate a Postgres store.
const storeOpenTimeout = 10 * time.Second

// OpenStore opens (and migrates) the device store. Its errors are *session.StoreError: a class
// and a fixed text that say where the store is (the SQLite path) and what to fix, never the
// driver's message (see session.StoreError).
func OpenStore(ctx context.Context, cfg session.StoreConfig, log waLog.Logger) (*sqlstore.Container, error) {
	c, _, _, err := openStore(ctx, cfg, true, log)
	return c, err
}

// openStore is OpenStore that also returns the database and its dialect, for the store's
// binding and the inbox, which share the device store's database. A new SQLite store starts
// from the schema snapshot (store_snapshot.go) unless snapshot is false.
func openStore(ctx context.Context, cfg session.StoreConfig, snapshot bool, log waLog.Logger) (*sqlstore.Container, *sql.DB, string, error) {
	var dialect, dsn string
	classify := postgresError
	switch cfg.Type {
	case "", sessionenv.StoreSQLite:
		if cfg.SQLitePath == "" {
			return nil, nil, "", session.NewStoreError(session.StoreNotConfigured, sessionenv.SQLitePath+" is not set", nil)
		}
		dialect, dsn = "sqlite", SQLiteDSN(cfg.SQLitePath)
		if snapshot {
			seedSQLiteStore(cfg.SQLitePath, schemaSnapshot)
		}
		classify = func(err error) *session.StoreError { return sqliteError(cfg.SQLitePath, err) }
	case sessionenv.StorePostgres:
		if cfg.PostgresDSN == "" {
			return nil, nil, "", session.NewStoreError(session.StoreNotConfigured, sessionenv.PostgresDSN+" is not set", nil)
		}
		dialect, dsn = "postgres", cfg.PostgresDSN
	default:
		return nil, nil, "", session.NewStoreError(session.StoreNotConfigured, sessionenv.StoreType+" must be sqlite or postgres", nil)
	}
	driverName := dialect
	if dialect == "postgres" {
		driverName = "pgx"
	}
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, nil, "", classify(err)
	}
	uctx, cancel := context.WithTimeout(ctx, storeOpenTimeout)
	defer cancel()
	c := sqlstore.NewWithDB(db, dialect, log)
	if err := c.Upgrade(uctx); err != nil {
		_ = db.Close()
		return nil, nil, "", classify(err)
	}
	return c, db, dialect, nil
}

// sqliteError classifies an SQLite open or migration failure. The path is the operator's (the
// store volume's mount), so it is said; the driver's text is not.
func sqliteError(path string, err error) *session.StoreError {
	text := func(what string) string { return "the SQLite device store at " + path + " " + what }
	msg := err.Error() // classified, never shown
	switch {
	case errors.Is(err, fs.ErrPermission) || strings.Contains(msg, "permission denied") || strings.Contains(msg, "readonly database"):
		return session.NewStoreError(session.StorePermissionDenied, text("cannot be written: check the volume's permissions (fsGroup)"), err)
	case errors.Is(err, fs.ErrNotExist) || strings.Contains(msg, "unable to open database file") || strings.Contains(msg, "out of memory (14)"):
		return session.NewStoreError(session.StoreUnavailable, text("cannot be opened: is the volume mounted there?"), err)
	case errors.Is(err, syscall.ENOSPC) || strings.Contains(msg, "database or disk is full"):
		return session.NewStoreError(session.StoreNoSpace, text("is full"), err)
	case strings.Contains(msg, "database is locked") || strings.Contains(msg, "SQLITE_BUSY"):
		return session.NewStoreError(session.StoreBusy, text("is locked by another process"), err)
	case strings.Contains(msg, "not a database") || strings.Contains(msg, "malformed"):
		return session.NewStoreError(session.StoreCorrupt, text("is not a readable database"), err)
	default:
		return session.NewStoreError(session.StoreSchemaUpgrade, text("cannot be opened or migrated"), err)
	}
}

// postgresError classifies a Postgres failure by the driver's error types and SQLSTATE codes;
// nothing of the DSN (user, host, database, password, or a token put where a DSN belongs) is
// kept in the text.
func postgresError(err error) *session.StoreError {
	const where = "the Postgres device store"
	var (
		parse   *pgconn.ParseConfigError
		pgErr   *pgconn.PgError
		dnsErr  *net.DNSError
		netErr  net.Error
		certErr *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
	)
	switch {
	case errors.As(err, &parse):
		return session.NewStoreError(session.StoreDSNInvalid,
			"the DSN in the Secret named by spec.store.postgres.secretRef is not a PostgreSQL connection string", err)
	case errors.As(err, &pgErr):
		switch {
		case pgErr.Code == "28P01" || pgErr.Code == "28000":
			return session.NewStoreError(session.StoreAuthFailed, where+" refused the DSN's credentials", err)
		case pgErr.Code == "3D000":
			return session.NewStoreError(session.StoreDatabaseNotFound, "the database the DSN names does not exist", err)
		case pgErr.Code == "42501":
			return session.NewStoreError(session.StorePermissionDenied, "the DSN's role may not create or change the store's tables", err)
		case pgErr.Code == "53100":
			return session.NewStoreError(session.StoreNoSpace, where+" is out of disk space", err)
		case strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P"):
			return session.NewStoreError(session.StoreUnavailable, where+" is not accepting connections", err)
		default:
			return session.NewStoreError(session.StoreSchemaUpgrade, where+" refused a statement (SQLSTATE "+pgErr.Code+")", err)
		}
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &host),
		strings.Contains(err.Error(), "tls: "), strings.Contains(err.Error(), "server refused TLS"):
		return session.NewStoreError(session.StoreTLS, "the TLS connection to "+where+" failed (sslmode, certificates)", err)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return session.NewStoreError(session.StoreTimeout, where+" did not answer in time", err)
	case errors.As(err, &dnsErr), errors.As(err, &netErr), errors.Is(err, syscall.ECONNREFUSED):
		return session.NewStoreError(session.StoreUnreachable, where+" cannot be reached (host, port, network policy)", err)
	default:
		return session.NewStoreError(session.StoreUnavailable, where+" cannot be opened", err)
	}
}

// isStoreError reports an error that comes from the database driver (a store failure while
// running, wrapped by whatsmeow), whose text may quote parts of the DSN.
func isStoreError(err error) bool {
	var (
		se      *session.StoreError
		parse   *pgconn.ParseConfigError
		pgErr   *pgconn.PgError
		connErr *pgconn.ConnectError
	)
	return errors.As(err, &se) || errors.As(err, &parse) || errors.As(err, &pgErr) || errors.As(err, &connErr) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn)
}

// safeError turns a driver error that reached the client's surface into a StoreError, so that
// nothing downstream can print it; other errors pass unchanged.
func safeError(err error) error {
	var se *session.StoreError
	if err == nil || errors.As(err, &se) || !isStoreError(err) {
		return err
	}
	return postgresError(err)
}
