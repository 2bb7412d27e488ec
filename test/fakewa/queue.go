package fakewa

import (
	"sync"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// queuedStanza is one stanza a device has not acknowledged yet: it is written
// to the device's live connection and written again to the next one until
// the device answers for it, as the real service redelivers.
type queuedStanza struct {
	id     types.MessageID
	node   waBinary.Node
	sentOn uint64 // connection it was last written to; 0 = never
}

func (q *queuedStanza) queued() *queuedStanza { return q }

// queuedItem is an entry of a stanzaQueue: a *queuedStanza or a type that
// embeds one and adds what its kind needs (the sender, the receipt type).
type queuedItem interface{ queued() *queuedStanza }

// stanzaQueue is one device's queue of stanzas of one kind, in the order they
// were queued.
type stanzaQueue[T queuedItem] struct {
	// sendMu serialises writes of the queue, so the order on the wire is the
	// queue order even when a send and a login race.
	sendMu  sync.Mutex
	pending []T // guarded by Server.mu
}

// pumpQueue writes, in queue order, every stanza of q that dev's live
// connection has not had yet, and returns how many it wrote. A failed write
// ends the pump; the rest stays queued for the next connection. After each
// write, wrote (if set) runs under s.mu with whether the stanza had already
// been written to an earlier connection.
func pumpQueue[T queuedItem](s *Server, dev *deviceRecord, q *stanzaQueue[T], kind string, wrote func(redelivery bool)) int {
	q.sendMu.Lock()
	defer q.sendMu.Unlock()

	s.mu.Lock()
	var c *conn
	for _, live := range dev.conns {
		c = live
	}
	var todo []*queuedStanza
	if c != nil {
		for _, item := range q.pending {
			if st := item.queued(); st.sentOn != c.id {
				todo = append(todo, st)
			}
		}
	}
	s.mu.Unlock()

	written := 0
	for _, st := range todo {
		if err := c.sendNode(st.node); err != nil {
			c.log.Debug("writing a queued "+kind+" failed; it stays queued", "id", st.id, "err", err)
			break
		}
		written++
		s.mu.Lock()
		redelivery := st.sentOn != 0
		st.sentOn = c.id
		if wrote != nil {
			wrote(redelivery)
		}
		s.mu.Unlock()
	}
	return written
}
