package waendpoint_test

import (
	"context"
	"path/filepath"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"
	_ "modernc.org/sqlite"
)

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
