package whatsapp

import (
	"testing"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/util/keys"
)

// The pool's pre-keys are uploaded to WhatsApp as the device's: each public key must be the one
// whatsmeow derives from its private key, and the private key clamped as whatsmeow clamps it.
func TestPoolKeyPairsAreWhatsmeowsKeyPairs(t *testing.T) {
	g := NewWithT(t)
	pairs := newKeyPairs(200)
	seen := map[[32]byte]bool{}
	for _, kp := range pairs {
		g.Expect(kp.Priv[0] & 7).To(BeZero())
		g.Expect(kp.Priv[31] & 0xc0).To(Equal(byte(0x40)))
		g.Expect(*kp.Pub).To(Equal(*keys.NewKeyPairFromPrivateKey(*kp.Priv).Pub))
		g.Expect(seen[*kp.Priv]).To(BeFalse(), "a private key twice")
		seen[*kp.Priv] = true
	}
	// Private keys at the edges of the clamped range, where a reduction mod l matters most.
	for _, fill := range []byte{0x00, 0xff} {
		var priv, pub [32]byte
		for i := range priv {
			priv[i] = fill
		}
		x25519Base(&pub, &priv)
		g.Expect(pub).To(Equal(*keys.NewKeyPairFromPrivateKey(priv).Pub))
	}
}

// The pool's cost, per pair, against whatsmeow's keys.NewKeyPair.
func BenchmarkPoolKeyPair(b *testing.B) {
	b.Run("newKeyPairs", func(b *testing.B) {
		for b.Loop() {
			newKeyPairs(1)
		}
	})
	b.Run("whatsmeow", func(b *testing.B) {
		for b.Loop() {
			keys.NewKeyPair()
		}
	})
}
