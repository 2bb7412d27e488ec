package fakewa

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/util/gcmutil"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
)

// noiseState is the responder side of Noise_XX_25519_AESGCM_SHA256 as
// whatsmeow's socket.NoiseHandshake runs it. That type cannot be reused on the
// server: its chaining key (salt) is private and its Finish needs a client
// FrameSocket. The steps mirror it exactly, so both sides derive equal keys.
type noiseState struct {
	hash    []byte
	salt    []byte
	key     cipher.AEAD
	counter uint32
}

func newNoiseState(header []byte) (*noiseState, error) {
	pattern := []byte(socket.NoiseStartPattern)
	if len(pattern) != 32 {
		// whatsmeow hashes patterns of other lengths; the real one is 32 bytes.
		sum := sha256.Sum256(pattern)
		pattern = sum[:]
	}
	key, err := gcmutil.Prepare(pattern)
	if err != nil {
		return nil, err
	}
	ns := &noiseState{hash: pattern, salt: pattern, key: key}
	ns.authenticate(header)
	return ns, nil
}

func (ns *noiseState) authenticate(data []byte) {
	sum := sha256.Sum256(append(append([]byte(nil), ns.hash...), data...))
	ns.hash = sum[:]
}

func (ns *noiseState) encrypt(plaintext []byte) []byte {
	ciphertext := ns.key.Seal(nil, noiseIV(ns.counter), plaintext, ns.hash)
	ns.counter++
	ns.authenticate(ciphertext)
	return ciphertext
}

func (ns *noiseState) decrypt(ciphertext []byte) ([]byte, error) {
	plaintext, err := ns.key.Open(nil, noiseIV(ns.counter), ciphertext, ns.hash)
	ns.counter++
	if err != nil {
		return nil, err
	}
	ns.authenticate(ciphertext)
	return plaintext, nil
}

func (ns *noiseState) mixSharedSecret(priv, pub [32]byte) error {
	secret, err := curve25519.X25519(priv[:], pub[:])
	if err != nil {
		return fmt.Errorf("x25519: %w", err)
	}
	write, read, err := extractAndExpand(ns.salt, secret)
	if err != nil {
		return err
	}
	ns.salt = write
	ns.counter = 0
	ns.key, err = gcmutil.Prepare(read)
	return err
}

// transport derives the post-handshake ciphers. The client writes with the
// first key, so that is the server's read key.
func (ns *noiseState) transport() (*noiseTransport, error) {
	clientWrite, clientRead, err := extractAndExpand(ns.salt, nil)
	if err != nil {
		return nil, err
	}
	readKey, err := gcmutil.Prepare(clientWrite)
	if err != nil {
		return nil, err
	}
	writeKey, err := gcmutil.Prepare(clientRead)
	if err != nil {
		return nil, err
	}
	return &noiseTransport{readKey: readKey, writeKey: writeKey}, nil
}

func extractAndExpand(salt, data []byte) (write, read []byte, err error) {
	h := hkdf.New(sha256.New, data, salt, nil)
	write = make([]byte, 32)
	read = make([]byte, 32)
	if _, err = io.ReadFull(h, write); err != nil {
		return nil, nil, err
	}
	if _, err = io.ReadFull(h, read); err != nil {
		return nil, nil, err
	}
	return write, read, nil
}

func noiseIV(counter uint32) []byte {
	iv := make([]byte, 12)
	binary.BigEndian.PutUint32(iv[8:], counter)
	return iv
}

// noiseTransport encrypts frames after the handshake. Each direction has its
// own counter; the write side is locked because several goroutines (pairing,
// faults, the read loop answering iqs) send on one connection.
type noiseTransport struct {
	readKey     cipher.AEAD
	writeKey    cipher.AEAD
	readCounter uint32

	writeMu      sync.Mutex
	writeCounter uint32
}

var errDecrypt = errors.New("frame failed to decrypt")

func (t *noiseTransport) open(ciphertext []byte) ([]byte, error) {
	plaintext, err := t.readKey.Open(nil, noiseIV(t.readCounter), ciphertext, nil)
	t.readCounter++
	if err != nil {
		return nil, errDecrypt
	}
	return plaintext, nil
}

// seal must be called with writeMu held so that the counter order matches
// the order frames go out on the socket.
func (t *noiseTransport) seal(plaintext []byte) []byte {
	ciphertext := t.writeKey.Seal(nil, noiseIV(t.writeCounter), plaintext, nil)
	t.writeCounter++
	return ciphertext
}
