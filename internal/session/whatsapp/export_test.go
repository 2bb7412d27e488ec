package whatsapp

import (
	"github.com/waoperator/whatsapp-operator/internal/session"
)

// PreKeyPool is, for tests, the pre-key pool of an unpaired client: closed when filled, and
// its first key pair's public key then.
func PreKeyPool(c session.Client) (ready <-chan struct{}, firstPublic func() []byte) {
	p := c.(*client).prekeys
	return p.ready, func() []byte {
		p.mu.Lock()
		defer p.mu.Unlock()
		return append([]byte(nil), p.pairs[0].Pub[:]...)
	}
}
