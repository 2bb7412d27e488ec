package whatsapp

import (
	"crypto/rand"

	"filippo.io/edwards25519"
	"go.mau.fi/whatsmeow/util/keys"
)

// newKeyPairs makes n X25519 key pairs, each what whatsmeow's keys.NewKeyPair makes (a random
// clamped private key and its Curve25519 public key), for less than half the CPU: the public
// key is the Montgomery u of the clamped scalar times the Ed25519 base point, which
// edwards25519 computes from precomputed tables, where curve25519.ScalarBaseMult runs the
// generic ladder (812 pairs: 26.5 ms against 63 ms at load 4–8; BenchmarkPoolKeyPair compares
// one pair each way). The first login's 812 pre-keys were the largest CPU cost of a pairing
// session, more than its whole start up to the QR code (docs/benchmarks.md, "Fifth round: the
// session's start CPU"). The private keys come from one read of crypto/rand.
func newKeyPairs(n int) []keys.KeyPair {
	privs := make([]byte, 32*n)
	_, _ = rand.Read(privs) // crypto/rand.Read does not fail (it crashes the program instead)
	pubs := make([][32]byte, n)
	pairs := make([]keys.KeyPair, n)
	for i := range pairs {
		priv := (*[32]byte)(privs[32*i:])
		priv[0] &= 248
		priv[31] &= 127
		priv[31] |= 64
		x25519Base(&pubs[i], priv)
		pairs[i] = keys.KeyPair{Priv: priv, Pub: &pubs[i]}
	}
	return pairs
}

// x25519Base sets pub to X25519(priv, 9). [k]B on Ed25519 and [k]9 on Curve25519 are the same
// point under the birational map, and B's order l divides out: k mod l gives the same point.
func x25519Base(pub, priv *[32]byte) {
	s, err := edwards25519.NewScalar().SetBytesWithClamping(priv[:])
	if err != nil {
		panic(err) // only for a length other than 32
	}
	copy(pub[:], new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery())
}
