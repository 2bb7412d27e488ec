package fakewa

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/waoperator/whatsapp-operator/test/fakewa/internal/wire"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
)

// conn is one client websocket after (or during) the noise handshake.
type conn struct {
	id  uint64
	srv *Server
	log *slog.Logger
	ws  *websocket.Conn
	raw net.Conn

	transport    *noiseTransport
	clientStatic [32]byte
	payload      *waWa6.ClientPayload

	// Set once the handshake tells what the connection is for. device is
	// set for logins, reg for registration (pairing) connections.
	device *deviceRecord
	reg    *registration

	// live is true while the connection counts in its device's Live;
	// guarded by srv.mu. ended stops frame handling after a terminal event.
	live  bool
	ended atomic.Bool

	waitersMu sync.Mutex
	waiters   map[string]chan *waBinary.Node

	closeOnce sync.Once
	// done is closed when the read loop has returned, so that a phone
	// waiting for this client's reply gives up at once.
	done chan struct{}
}

func (s *Server) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// whatsmeow sends Origin https://web.whatsapp.com while the request
		// host may be a loopback address.
		InsecureSkipVerify: true,
	})
	if err != nil {
		s.log.Warn("websocket accept failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	// A few bytes over the frame limit let the decoder report the frame as
	// too large (with a log line) instead of the websocket layer.
	ws.SetReadLimit(int64(s.opts.MaxFrameSize) + 64)
	raw, _ := r.Context().Value(connCtxKey{}).(net.Conn)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.CloseNow()
		return
	}
	s.nextConnID++
	c := &conn{
		id:      s.nextConnID,
		srv:     s,
		ws:      ws,
		raw:     raw,
		waiters: map[string]chan *waBinary.Node{},
		done:    make(chan struct{}),
	}
	c.log = s.log.With("conn", c.id)
	s.conns[c.id] = c
	s.mu.Unlock()

	reason := c.run(s.ctx)
	s.connGone(c, reason)
}

// run serves the connection until it ends and returns why it ended.
func (c *conn) run(ctx context.Context) string {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dec := wire.NewFrameDecoder(c.srv.opts.MaxFrameSize)

	hsCtx, hsCancel := context.WithTimeout(ctx, c.srv.opts.HandshakeTimeout)
	err := c.handshake(hsCtx, dec)
	hsCancel()
	if err != nil {
		c.log.Warn("handshake failed, closing connection", "err", err)
		c.srv.countBadInput()
		c.closeNow(websocket.StatusProtocolError)
		return ReasonBadInput
	}
	c.srv.afterHandshake(c)

	for {
		frames, err := c.readFrames(ctx, dec)
		if err != nil {
			if c.ended.Load() || ctx.Err() != nil {
				return ReasonServerClosed
			}
			var bad *badInputError
			if errors.As(err, &bad) {
				c.log.Warn("bad input from client, closing connection", "err", err)
				c.srv.countBadInput()
				c.closeNow(websocket.StatusProtocolError)
				return ReasonBadInput
			}
			c.log.Debug("connection closed by client", "err", err)
			return ReasonClientClosed
		}
		for _, frame := range frames {
			if c.ended.Load() {
				continue
			}
			plaintext, err := c.transport.open(frame)
			if err == nil {
				var node *waBinary.Node
				node, err = wire.DecodeNode(plaintext)
				if err == nil {
					c.handleNode(node)
					continue
				}
			}
			c.log.Warn("bad frame from client, closing connection", "err", err)
			c.srv.countBadInput()
			c.closeNow(websocket.StatusProtocolError)
			return ReasonBadInput
		}
	}
}

var errConnClosed = errors.New("client connection closed")

type badInputError struct{ err error }

func (e *badInputError) Error() string { return e.err.Error() }
func (e *badInputError) Unwrap() error { return e.err }

// readFrames reads websocket messages until at least one frame completes.
func (c *conn) readFrames(ctx context.Context, dec *wire.FrameDecoder) ([][]byte, error) {
	for {
		typ, msg, err := c.ws.Read(ctx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				return nil, &badInputError{err}
			}
			return nil, err
		}
		if typ != websocket.MessageBinary {
			return nil, &badInputError{fmt.Errorf("unexpected websocket message type %v", typ)}
		}
		frames, err := dec.Feed(msg)
		if err != nil {
			return nil, &badInputError{err}
		}
		if len(frames) > 0 {
			return frames, nil
		}
	}
}

// sendNode encrypts and writes one node. Writes are serialized so frame
// counters match the socket order.
func (c *conn) sendNode(node waBinary.Node) error {
	payload, err := wire.EncodeNode(node)
	if err != nil {
		return err
	}
	c.transport.writeMu.Lock()
	defer c.transport.writeMu.Unlock()
	frame, err := wire.EncodeFrame(c.transport.seal(payload))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.srv.ctx, 10*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageBinary, frame)
}

// request sends a server-initiated iq and waits for the client's reply.
func (c *conn) request(ctx context.Context, node waBinary.Node) (*waBinary.Node, error) {
	id, _ := node.Attrs["id"].(string)
	ch := make(chan *waBinary.Node, 1)
	c.waitersMu.Lock()
	c.waiters[id] = ch
	c.waitersMu.Unlock()
	defer func() {
		c.waitersMu.Lock()
		delete(c.waiters, id)
		c.waitersMu.Unlock()
	}()
	if err := c.sendNode(node); err != nil {
		return nil, err
	}
	select {
	case reply := <-ch:
		return reply, nil
	case <-c.done:
		return nil, errConnClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// deliverReply hands an iq result/error to a pending request.
func (c *conn) deliverReply(node *waBinary.Node) bool {
	id := attrString(node, "id")
	c.waitersMu.Lock()
	ch, ok := c.waiters[id]
	c.waitersMu.Unlock()
	if ok {
		select {
		case ch <- node:
		default:
		}
	}
	return ok
}

// endWith sends a terminal node (stream error or failure), stops handling
// the connection's frames and closes the socket after the grace period.
// The caller has already updated accounting.
func (c *conn) endWith(node waBinary.Node) {
	c.ended.Store(true)
	if err := c.sendNode(node); err != nil {
		c.log.Debug("sending terminal node failed", "tag", node.Tag, "err", err)
	}
	c.closeOnce.Do(func() {
		time.AfterFunc(c.srv.opts.CloseGrace, func() {
			_ = c.ws.Close(websocket.StatusNormalClosure, "")
		})
	})
}

// closeNow closes the websocket at once, telling the client why.
func (c *conn) closeNow(code websocket.StatusCode) {
	c.ended.Store(true)
	c.closeOnce.Do(func() {})
	go func() { _ = c.ws.Close(code, "") }()
}

// dropTCP closes the TCP connection under TLS and websocket: the client sees
// a bare connection loss, as on a network failure.
func (c *conn) dropTCP() {
	c.ended.Store(true)
	c.closeOnce.Do(func() {})
	if c.raw != nil {
		if tc, ok := c.raw.(interface{ NetConn() net.Conn }); ok {
			_ = tc.NetConn().Close()
			return
		}
		_ = c.raw.Close()
		return
	}
	_ = c.ws.CloseNow()
}

// connGone runs when the read loop returns: accounting for a connection the
// server did not end itself, and cleanup of pairing state.
func (s *Server) connGone(c *conn, reason string) {
	s.mu.Lock()
	s.endLiveLocked(c, reason)
	delete(s.conns, c.id)
	if c.reg != nil {
		s.dropRegistrationLocked(c.reg)
	}
	s.bump()
	s.mu.Unlock()
	close(c.done)
	_ = c.ws.CloseNow()
	c.log.Debug("connection gone", "reason", reason)
}

// endLiveLocked takes a connection out of its device's live count once.
func (s *Server) endLiveLocked(c *conn, reason string) {
	if !c.live {
		return
	}
	c.live = false
	c.ended.Store(true)
	dev := c.device
	delete(dev.conns, c.id)
	dev.ledger.live--
	s.record(&dev.ledger, Event{Kind: EventDisconnected, Device: dev.jid.String(), ConnID: c.id, Reason: reason})
}

func (s *Server) countBadInput() {
	s.mu.Lock()
	s.totals.BadInputs++
	s.bump()
	s.mu.Unlock()
}

func (c *conn) writeRawFrame(ctx context.Context, data []byte) error {
	frame, err := wire.EncodeFrame(data)
	if err != nil {
		return err
	}
	return c.ws.Write(ctx, websocket.MessageBinary, frame)
}
