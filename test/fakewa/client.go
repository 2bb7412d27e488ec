package fakewa

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
)

// ClientConfig is what a client needs to reach a fake server. The command
// writes it as JSON; the fakewa build of internal/waendpoint reads it.
type ClientConfig struct {
	// Address is the server's loopback host:port.
	Address string `json:"address"`
	// CAPEM is the TLS CA that signed the server certificate.
	CAPEM string `json:"caPEM"`
	// RootPublicKey replaces whatsmeow.WACertPubKey (32 bytes; base64 in JSON).
	RootPublicKey []byte `json:"rootPublicKey"`
}

// ClientConfig describes this server for clients.
func (s *Server) ClientConfig() ClientConfig {
	root := s.creds.RootPublicKey()
	return ClientConfig{Address: s.Addr(), CAPEM: string(s.creds.CAPEM()), RootPublicKey: root[:]}
}

// ConfigureClient points a whatsmeow client at this server.
func (s *Server) ConfigureClient(cli *whatsmeow.Client) error {
	return s.ClientConfig().Apply(cli)
}

// WriteClientConfig writes the client config as JSON (mode 0600).
func (s *Server) WriteClientConfig(path string) error {
	data, err := json.MarshalIndent(s.ClientConfig(), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o600)
}

// ReadClientConfig reads a config written by WriteClientConfig.
func ReadClientConfig(path string) (ClientConfig, error) {
	var cfg ClientConfig
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("fakewa client config %s: %w", path, err)
	}
	return cfg, cfg.validate()
}

func (cfg ClientConfig) validate() error {
	if len(cfg.RootPublicKey) != 32 {
		return errors.New("fakewa client config: rootPublicKey must be 32 bytes")
	}
	if cfg.CAPEM == "" {
		return errors.New("fakewa client config: caPEM is empty")
	}
	// The fake must never become a way to send a client anywhere but this
	// machine.
	return requireLoopback(cfg.Address)
}

// whatsmeow reads WACertPubKey during every handshake; it is written only
// when it changes, under a lock, so configuring many clients for servers
// that share ProcessCredentials does not race with running handshakes.
var rootKeyMu sync.Mutex

// Apply sets the client's pre-login and websocket HTTP clients to dial the
// server and trust its CA, and replaces whatsmeow.WACertPubKey (a process
// global) with the server's noise root key.
func (cfg ClientConfig) Apply(cli *whatsmeow.Client) error {
	preLogin, err := cfg.HTTPClient()
	if err != nil {
		return err
	}
	websocket, err := cfg.HTTPClient()
	if err != nil {
		return err
	}
	rootKeyMu.Lock()
	if [32]byte(cfg.RootPublicKey) != whatsmeow.WACertPubKey {
		whatsmeow.WACertPubKey = [32]byte(cfg.RootPublicKey)
	}
	rootKeyMu.Unlock()
	cli.SetPreLoginHTTPClient(preLogin)
	cli.SetWebsocketHTTPClient(websocket)
	return nil
}

// HTTPClient dials the server whatever host a URL names (whatsmeow always
// asks for web.whatsapp.com:443) and verifies TLS against the test CA.
func (cfg ClientConfig) HTTPClient() (*http.Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(cfg.CAPEM)) {
		return nil, errors.New("fakewa client config: caPEM holds no certificate")
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, cfg.Address)
		},
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
	}}, nil
}
