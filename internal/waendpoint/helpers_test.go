package waendpoint_test

import (
	"context"
	"path/filepath"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"
	_ "modernc.org/sqlite"

	"github.com/waoperator/whatsapp-operator/internal/waendpoint"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// fakeServerInEnv starts a fake WhatsApp server, writes its client config and names the file
// in the variable the fakewa build reads.
func fakeServerInEnv(t *testing.T) *fakewa.Server {
	t.Helper()
	srv, err := fakewa.Start(fakewa.Options{})
	if err != nil {
		t.Fatalf("fakewa: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	path := filepath.Join(t.TempDir(), "fakewa.json")
	if err := srv.WriteClientConfig(path); err != nil {
		t.Fatalf("client config: %v", err)
	}
	t.Setenv(waendpoint.ConfigEnv, path)
	return srv
}

func newTestClient(t *testing.T) *whatsmeow.Client {
	t.Helper()
	path := filepath.Join(t.TempDir(), "device.db")
	container, err := sqlstore.New(context.Background(), "sqlite",
		"file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)", waLog.Noop)
	if err != nil {
		t.Fatalf("sqlstore: %v", err)
	}
	t.Cleanup(func() { _ = container.Close() })
	device, err := container.GetFirstDevice(context.Background())
	if err != nil {
		t.Fatalf("device: %v", err)
	}
	cli := whatsmeow.NewClient(device, waLog.Noop)
	t.Cleanup(cli.Disconnect)
	return cli
}
