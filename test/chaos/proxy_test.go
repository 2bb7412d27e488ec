package chaos

import (
	"io"
	"net"
	"sync"
	"time"
)

// cutProxy forwards TCP to the API server for one session pod. TLS passes through untouched, so
// the pod keeps verifying the API server's own certificate. Cut models a network partition:
// open connections die and new ones are accepted but never answered, so the client sees
// timeouts rather than quick refusals.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	held  []net.Conn
}

func newCutProxy(target string) (*cutProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

func (p *cutProxy) URL() string { return "https://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.held = append(p.held, down)
			p.mu.Unlock()
			continue
		}
		p.mu.Unlock()
		go p.forward(down)
	}
}

func (p *cutProxy) forward(down net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		_ = down.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		_ = up.Close()
		_ = down.Close()
		return
	}
	p.conns[down], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// One direction ending ends the pair: a half-open API connection only hangs the client.
		_ = dst.Close()
		_ = src.Close()
	}
	wg.Go(func() { pipe(up, down) })
	wg.Go(func() { pipe(down, up) })
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, down)
	delete(p.conns, up)
	p.mu.Unlock()
}

// Cut drops every open connection and blackholes new ones until Restore.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore forwards again. The connections held while cut are closed, so their clients
// redial instead of waiting on a connection that was never answered.
func (p *cutProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	for _, c := range p.held {
		_ = c.Close()
	}
	p.held = nil
}

func (p *cutProxy) Close() {
	_ = p.ln.Close()
	p.Cut()
	p.Restore()
}
