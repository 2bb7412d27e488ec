package sendapi

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Serve listens on addr and serves h until ctx ends. With certFile and keyFile (a
// kubernetes.io/tls Secret, as cert-manager writes it) it serves HTTPS and picks up a renewed
// certificate without a restart; without them plain HTTP, which the controller's NetworkPolicy
// confines to the connection's namespace. It returns the address it listens on.
func Serve(ctx context.Context, addr string, h http.Handler, certFile, keyFile string, log logr.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// ?wait=sent holds a response up to MaxWait.
		WriteTimeout:   MaxWait + 10*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 32 << 10,
	}
	if certFile != "" {
		certs := &certFiles{cert: certFile, key: keyFile}
		if _, err := certs.get(nil); err != nil {
			_ = ln.Close()
			return nil, err
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(err, "send API stopped", "address", addr)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	return ln.Addr(), nil
}

// certFiles loads a key pair again when its files change (a mounted Secret is updated in place).
type certFiles struct {
	cert, key string

	mu      sync.Mutex
	modTime time.Time
	pair    *tls.Certificate
}

func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	st, err := os.Stat(c.cert)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pair != nil && st.ModTime().Equal(c.modTime) {
		return c.pair, nil
	}
	pair, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		return nil, err
	}
	c.pair, c.modTime = &pair, st.ModTime()
	return c.pair, nil
}
