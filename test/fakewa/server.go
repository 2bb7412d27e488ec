// Package fakewa is a fake WhatsApp multi-device server and fake phone for
// tests. The unmodified whatsmeow client talks to it over loopback TLS
// websockets after ConfigureClient points it there. See README.md.
package fakewa

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/waoperator/whatsapp-operator/test/fakewa/internal/wire"
)

// Options configure a Server. The zero value behaves like the real service
// with a quiet logger.
type Options struct {
	// Addr to listen on; must be loopback. Default 127.0.0.1:0.
	Addr string
	// Logger for server logs; default discards.
	Logger *slog.Logger
	// Credentials (noise root key and TLS CA); default ProcessCredentials().
	Credentials *Credentials

	// QRRefs is how many refs one pairing window hands out (default 6).
	QRRefs int
	// FirstRefTTL is how long the first ref is valid (default 60s), and
	// NextRefTTL each later one (default 20s). After the last ref expires
	// the server closes the registration connection.
	FirstRefTTL time.Duration
	NextRefTTL  time.Duration

	// Now is the clock used to judge ref expiry (default time.Now). A test
	// can move it forward to expire refs without waiting; the timer that
	// closes the registration connection still runs on real time.
	Now func() time.Time

	// CloseGrace is how long the server waits between a terminal stream
	// error or failure and closing the socket (default 250ms). whatsmeow
	// handles nodes on a separate goroutine from socket reads; closing at
	// once could let it see the close before the error and reconnect.
	CloseGrace time.Duration
	// HandshakeTimeout bounds the noise handshake (default 20s).
	HandshakeTimeout time.Duration
	// PairReplyTimeout bounds the wait for the client's pair-device-sign
	// reply to pair-success (default 10s).
	PairReplyTimeout time.Duration
	// MaxFrameSize bounds one client frame (default wire.DefaultMaxFrameSize).
	MaxFrameSize int
}

func (o Options) withDefaults() (Options, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Credentials == nil {
		creds, err := ProcessCredentials()
		if err != nil {
			return o, err
		}
		o.Credentials = creds
	}
	if o.QRRefs <= 0 {
		o.QRRefs = 6
	}
	if o.FirstRefTTL <= 0 {
		o.FirstRefTTL = 60 * time.Second
	}
	if o.NextRefTTL <= 0 {
		o.NextRefTTL = 20 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CloseGrace <= 0 {
		o.CloseGrace = 250 * time.Millisecond
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 20 * time.Second
	}
	if o.PairReplyTimeout <= 0 {
		o.PairReplyTimeout = 10 * time.Second
	}
	if o.MaxFrameSize <= 0 {
		o.MaxFrameSize = wire.DefaultMaxFrameSize
	}
	return o, nil
}

// Server is a running fake WhatsApp server.
type Server struct {
	opts  Options
	log   *slog.Logger
	creds *Credentials

	listener net.Listener
	httpSrv  *http.Server
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu          sync.Mutex
	changed     chan struct{}
	nextConnID  uint64
	conns       map[uint64]*conn
	devices     map[types.JID]*deviceRecord
	pending     map[[32]byte]*ledger // pre-pairing accounting by noise key
	refs        map[string]*qrRef
	linkCodes   map[string]*linkCodeSession // by phone number (digits)
	phones      map[string]*Phone
	failures    map[types.JID]*loginFailurePlan
	totals      ServerStats
	closed      bool
	nextLIDUser uint64
	msg         *messaging // routing state, created on first use
	in          *inbound   // device → phone state, created on first use
}

type connCtxKey struct{}

// Start listens on loopback and serves until Close.
func Start(opts Options) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := requireLoopback(opts.Addr); err != nil {
		return nil, err
	}
	cert, err := opts.Credentials.serverTLSCert()
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	tcp, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:        opts,
		log:         opts.Logger,
		creds:       opts.Credentials,
		listener:    tls.NewListener(tcp, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		ctx:         ctx,
		cancel:      cancel,
		changed:     make(chan struct{}),
		conns:       map[uint64]*conn{},
		devices:     map[types.JID]*deviceRecord{},
		pending:     map[[32]byte]*ledger{},
		refs:        map[string]*qrRef{},
		linkCodes:   map[string]*linkCodeSession{},
		phones:      map[string]*Phone{},
		failures:    map[types.JID]*loginFailurePlan{},
		nextLIDUser: 100000000000000,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/chat", s.serveWebsocket)
	s.httpSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// The raw connection is kept so that a "TCP drop" can close it
		// without a TLS close_notify or websocket close frame.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connCtxKey{}, c)
		},
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	s.log.Info("fakewa listening", "addr", s.Addr())
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Close ends every connection and stops the server.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	for _, c := range conns {
		s.endLiveLocked(c, ReasonServerClosed)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.dropTCP()
	}
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.httpSrv.Shutdown(ctx)
	s.wg.Wait()
	return err
}

func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not loopback: fakewa only serves loopback", addr)
	}
	return nil
}
