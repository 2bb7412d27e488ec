package whatsapp

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	waAdv "go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/waoperator/whatsapp-operator/internal/session"
)

// pairedSQLStore is a saved device on a fresh SQLite store, as whatsmeow has it right after
// PairSuccess, and the store's database.
func pairedSQLStore(t *testing.T, g *WithT) (*sqlstore.SQLStore, *pooledPreKeys) {
	return pairedStore(t, g, session.StoreConfig{Type: "sqlite", SQLitePath: filepath.Join(t.TempDir(), "device.db")})
}

func pairedStore(t *testing.T, g *WithT, cfg session.StoreConfig) (*sqlstore.SQLStore, *pooledPreKeys) {
	ctx := context.Background()
	container, db, _, err := openStore(ctx, cfg, true, waLog.Noop)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = container.Close() })
	dev := container.NewDevice()
	jid := types.NewADJID("15550009001", 0, 3)
	dev.ID = &jid
	dev.SignedPreKey = dev.IdentityKey.CreateSignedPreKey(1)
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
	g.Expect(container.PutDevice(ctx, dev)).To(Succeed())
	s, ok := dev.PreKeys.(*sqlstore.SQLStore)
	g.Expect(ok).To(BeTrue(), "a saved device's pre-keys are an *sqlstore.SQLStore")
	return s, &pooledPreKeys{SQLStore: s, pool: newPreKeyPool(), db: db}
}

func filledPool(g *WithT, p *preKeyPool) []keys.KeyPair {
	p.fill()
	g.Eventually(p.ready).WithTimeout(time.Minute).Should(BeClosed())
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]keys.KeyPair(nil), p.pairs...)
}

// The first login's 812 pre-keys are the pool's, stored as whatsmeow stores its own: it finds
// them by ID (to decrypt a message sent to one), and does not upload them twice.
func TestFirstLoginTakesThePoolsPreKeys(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	sqlStore, pooled := pairedSQLStore(t, g)
	firstLoginTakesThePoolsPreKeys(g, sqlStore, pooled)
}

func firstLoginTakesThePoolsPreKeys(g *WithT, sqlStore *sqlstore.SQLStore, pooled *pooledPreKeys) {
	ctx := context.Background()
	want := filledPool(g, pooled.pool)

	got, err := pooled.GetOrGenPreKeys(ctx, initialPreKeys)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(HaveLen(initialPreKeys))
	for i, k := range got {
		g.Expect(k.KeyID).To(Equal(uint32(i + 1)))
		g.Expect(k.KeyPair).To(Equal(want[i]))
	}
	stored, err := sqlStore.GetPreKey(ctx, 7)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(stored.KeyPair).To(Equal(want[6]), "whatsmeow derives the public key from the stored private one")

	g.Expect(sqlStore.MarkPreKeysAsUploaded(ctx, got[len(got)-1].KeyID)).To(Succeed())
	g.Expect(sqlStore.UploadedPreKeyCount(ctx)).To(Equal(initialPreKeys))
	// The next batch is whatsmeow's own, after the pool's IDs.
	next, err := pooled.GetOrGenPreKeys(ctx, 50)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(next[0].KeyID).To(Equal(uint32(initialPreKeys + 1)))
}

// A device that has pre-keys keeps them: the pool never replaces or duplicates one.
func TestPoolLeavesExistingPreKeysAlone(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	sqlStore, pooled := pairedSQLStore(t, g)
	existing, err := sqlStore.GetOrGenPreKeys(ctx, 3)
	g.Expect(err).NotTo(HaveOccurred())
	filledPool(g, pooled.pool)

	got, err := pooled.GetOrGenPreKeys(ctx, initialPreKeys)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(HaveLen(initialPreKeys))
	for i := range existing {
		g.Expect(got[i].KeyPair).To(Equal(existing[i].KeyPair))
	}
}

// Asked before the pool is ready (a scan within a second of the code), whatsmeow generates its
// own.
func TestUnreadyPoolFallsBackToWhatsmeow(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	_, pooled := pairedSQLStore(t, g)
	got, err := pooled.GetOrGenPreKeys(context.Background(), initialPreKeys)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(HaveLen(initialPreKeys))
	g.Expect(got[0].KeyID).To(Equal(uint32(1)))
}
