// Command fakewa serves the fake WhatsApp server of test/fakewa on loopback
// for demos and manual tests, with a JSON control API, and writes the client
// config that the fakewa build of the session runtime reads
// (WAOPERATOR_FAKEWA_CONFIG).
//
//	go run ./test/fakewa/cmd/fakewa -config /tmp/fakewa.json
//	curl -s localhost:8089/devices
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fakewa:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address of the fake WhatsApp websocket (TLS)")
	control := flag.String("control", "127.0.0.1:8089", "loopback address of the JSON control API (plain HTTP)")
	configPath := flag.String("config", "fakewa-client.json", "where to write the client config (address, CA, root key)")
	refs := flag.Int("qr-refs", 6, "QR refs per pairing window")
	firstTTL := flag.Duration("first-ref-ttl", 60*time.Second, "lifetime of the first QR ref")
	nextTTL := flag.Duration("next-ref-ttl", 20*time.Second, "lifetime of each later QR ref")
	verbose := flag.Bool("v", false, "debug logging")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	srv, err := fakewa.Start(fakewa.Options{
		Addr: *listen, Logger: log, QRRefs: *refs, FirstRefTTL: *firstTTL, NextRefTTL: *nextTTL,
	})
	if err != nil {
		return err
	}
	defer func() { _ = srv.Close() }() // exiting anyway; the listener goes with the process
	if err := srv.WriteClientConfig(*configPath); err != nil {
		return err
	}

	if err := requireLoopback(*control); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		return err
	}
	api := &http.Server{Handler: srv.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := api.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control API", "err", err)
		}
	}()
	log.Info("fakewa ready", "websocket", srv.Addr(), "control", "http://"+ln.Addr().String(), "clientConfig", *configPath)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return api.Shutdown(shutdown)
}

// requireLoopback keeps the unauthenticated control API off the network.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("control address %q is not loopback", addr)
	}
	return nil
}
