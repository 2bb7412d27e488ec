package whatsapp

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"go.mau.fi/whatsmeow/util/keys"
)

// initialPreKeys is how many one-time pre-keys whatsmeow uploads at a device's first login
// (prekeys.go, uploadPreKeys with initialUpload).
const initialPreKeys = 812

// preKeyFillDelay keeps the pool's generation off the path to the first QR code in status.
const preKeyFillDelay = time.Second

// preKeyPool makes the first login's pre-keys while the QR code is shown. Between the scan and
// Connected, whatsmeow generates 812 X25519 key pairs and inserts them one statement each; that
// was most of scan → Connected (docs/benchmarks.md). A person takes seconds to scan: the pool
// generates them then, and the first login stores them in one transaction.
type preKeyPool struct {
	start sync.Once
	ready chan struct{}
	mu    sync.Mutex
	pairs []keys.KeyPair // nil once taken
}

func newPreKeyPool() *preKeyPool { return &preKeyPool{ready: make(chan struct{})} }

// fill starts the generation once, after preKeyFillDelay.
func (p *preKeyPool) fill() {
	p.start.Do(func() {
		time.AfterFunc(preKeyFillDelay, func() {
			pairs := newKeyPairs(initialPreKeys)
			p.mu.Lock()
			p.pairs = pairs
			p.mu.Unlock()
			close(p.ready)
		})
	})
}

// take returns the pool's pairs once, when count is what it holds and they are ready; nil
// otherwise (a scan within a second of the code: whatsmeow generates its own).
func (p *preKeyPool) take(count uint32) []keys.KeyPair {
	if count != initialPreKeys {
		return nil
	}
	select {
	case <-p.ready:
	default:
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pairs := p.pairs
	p.pairs = nil
	return pairs
}

// enablePreKeyPool gives a device that is not paired yet a pool: filled when its first QR code
// is shown, used by its first login. A paired device keeps its keys (whatsmeow tops them up 50
// at a time).
//
// The device gets its SQL stores in PrePairCallback, as sqlstore's PutDevice would give them
// (initializeDevice), with the pool in front of the pre-keys: that runs in the pairing
// goroutine before the device is saved, so the login after the reconnect reads them as it reads
// whatsmeow's own. (A PairSuccess handler runs after WhatsApp was answered, concurrently with
// that login.)
func enablePreKeyPool(cli *whatsmeow.Client, container *sqlstore.Container, db *sql.DB) *preKeyPool {
	if cli.Store.ID != nil || cli.Store.Initialized {
		return nil
	}
	pool := newPreKeyPool()
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.QR); ok {
			pool.fill()
		}
	})
	dev := cli.Store
	cli.PrePairCallback = func(jid types.JID, _, _ string) bool {
		s := sqlstore.NewSQLStore(container, jid)
		dev.SetAllStores(s)
		dev.PreKeys = &pooledPreKeys{SQLStore: s, pool: pool, db: db}
		dev.LIDs = container.LIDMap
		dev.Container = container
		dev.Initialized = true
		return true
	}
	return pool
}

// pooledPreKeys is the device's SQL store, whose first GetOrGenPreKeys takes the pool's keys.
type pooledPreKeys struct {
	*sqlstore.SQLStore
	pool *preKeyPool
	db   *sql.DB
}

func (s *pooledPreKeys) GetOrGenPreKeys(ctx context.Context, count uint32) ([]*keys.PreKey, error) {
	if pairs := s.pool.take(count); pairs != nil {
		if out, err := s.insert(ctx, pairs); err == nil {
			return out, nil
		}
		// Keys in the store already, or the insert failed: whatsmeow's own way.
	}
	return s.SQLStore.GetOrGenPreKeys(ctx, count)
}

var errPreKeysExist = errors.New("the device has pre-keys already")

// insert stores pairs as the device's pre-keys 1..n, not uploaded, in one transaction, in
// whatsmeow's table (store/sqlstore/upgrades), when the device has none yet.
func (s *pooledPreKeys) insert(ctx context.Context, pairs []keys.KeyPair) ([]*keys.PreKey, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM whatsmeow_pre_keys WHERE jid=$1`, s.JID).Scan(&n); err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, errPreKeysExist
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO whatsmeow_pre_keys (jid, key_id, key, uploaded) VALUES ($1, $2, $3, false)`)
	if err != nil {
		return nil, err
	}
	out := make([]*keys.PreKey, len(pairs))
	for i := range pairs {
		out[i] = &keys.PreKey{KeyPair: pairs[i], KeyID: uint32(i + 1)}
		if _, err := stmt.ExecContext(ctx, s.JID, out[i].KeyID, out[i].Priv[:]); err != nil {
			return nil, err
		}
	}
	if err := stmt.Close(); err != nil {
		return nil, err
	}
	return out, tx.Commit()
}
