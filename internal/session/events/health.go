package events

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// FailThreshold is how many failed tries in a row make a sink "failing": one lost request is
// noise, three in a row is a sink a person should look at. One success clears it.
const FailThreshold = 3

// healthState is a sink's recent record: failed tries in a row and the class of the last one.
type healthState struct {
	mu      sync.Mutex
	inARow  int
	class   string
	invalid bool
	failing atomic.Bool
	// The stranding episode (strand.go).
	stranding         bool
	episode, stranded int64
	strandReason      string
}

// Health reports whether the sink is failing and, if so, the class of its last error: a fixed
// text (HTTP 503, Timeout, ConnectionRefused, ...), never a body or a server's words.
func (d *Deliverer) Health() (failing bool, class string) {
	d.health.mu.Lock()
	defer d.health.mu.Unlock()
	return d.health.failing.Load(), d.health.class
}

func (d *Deliverer) failed(class string) {
	d.health.mu.Lock()
	d.health.inARow++
	d.health.class = class
	flip := d.health.inARow >= FailThreshold && !d.health.failing.Load()
	if flip {
		d.health.failing.Store(true)
	}
	d.health.mu.Unlock()
	if flip {
		d.Log.Info("sink is failing", "sink", d.Sink.Name, "error", class)
		d.notifyHealth()
	}
}

func (d *Deliverer) succeeded() {
	d.health.mu.Lock()
	d.health.inARow = 0
	flip := d.health.failing.Load() && !d.health.invalid
	if flip {
		d.health.failing.Store(false)
		d.health.class = ""
	}
	if d.health.stranding { // a delivery ends the episode
		d.health.stranding = false
		flip = true
	}
	d.health.mu.Unlock()
	if flip {
		d.Log.Info("sink recovered", "sink", d.Sink.Name)
		d.notifyHealth()
	}
}

// setHealth marks a sink that cannot be delivered to at all.
func (d *Deliverer) setHealth(class string, invalid bool) {
	d.health.mu.Lock()
	d.health.class, d.health.invalid = class, invalid
	d.health.failing.Store(true)
	d.health.mu.Unlock()
	d.notifyHealth()
}

func (d *Deliverer) notifyHealth() {
	if d.OnHealth != nil {
		d.OnHealth()
	}
}

// errorClass names a failed try in a fixed vocabulary.
func errorClass(err error, status int) string {
	if err == nil {
		return "HTTP " + strconv.Itoa(status)
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var tlsErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "Timeout"
	case errors.As(err, &dnsErr):
		return "DNSError"
	case errors.As(err, &tlsErr) || errors.As(err, &recErr):
		return "TLSError"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "ConnectionRefused"
	default:
		return "NetworkError"
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// NewHTTPClient makes a sink's client: no redirects followed (a redirect is a final answer, so
// a redirect loop costs one request), and, when roots is set, only those CAs trusted.
func NewHTTPClient(roots *tlsRoots) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots.pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
