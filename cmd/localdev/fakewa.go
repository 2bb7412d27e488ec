package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// fakeWhatsApp is test/fakewa's server with its JSON control API, the fake phone's interface.
type fakeWhatsApp struct {
	srv        *fakewa.Server
	api        *http.Server
	configPath string
	controlURL string
}

func startFakeWhatsApp(configPath, controlAddr string) (*fakeWhatsApp, error) {
	srv, err := fakewa.Start(fakewa.Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "fakewa"),
	})
	if err != nil {
		return nil, err
	}
	if err := srv.WriteClientConfig(configPath); err != nil {
		return nil, errors.Join(err, srv.Close())
	}
	ln, err := net.Listen("tcp", controlAddr)
	if err != nil {
		// A second `make run FAKE_WHATSAPP=1`, or the fakewa command, may hold the usual port;
		// any loopback port will do, since the instructions print the one in use.
		logger.Info("fake WhatsApp control address taken, using another loopback port", "address", controlAddr, "error", err.Error())
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, errors.Join(err, srv.Close())
	}
	fw := &fakeWhatsApp{
		srv:        srv,
		api:        &http.Server{Handler: srv.ControlHandler(), ReadHeaderTimeout: 10 * time.Second},
		configPath: configPath,
		controlURL: "http://" + ln.Addr().String(),
	}
	go func() {
		if err := fw.api.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "fake WhatsApp control API stopped")
		}
	}()
	logger.Info("fake WhatsApp", "websocket", srv.Addr(), "control", fw.controlURL, "clientConfig", configPath)
	return fw, nil
}

func (f *fakeWhatsApp) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(f.api.Shutdown(ctx), f.srv.Close())
}
