package whatsapp_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// A device paired through the session uploads the pre-keys its pool made while the QR code was
// shown, and a contact's first message, encrypted to one of them, is decrypted and kept.
func TestPairingUploadsThePoolsPreKeysAndTheyDecrypt(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv, err := fakewa.Start(fakewa.Options{})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "device.db")

	opener := whatsapp.Opener{Store: session.StoreConfig{Type: "sqlite", SQLitePath: path}, Configure: srv.ConfigureClient}
	cli, err := opener.Open(ctx, logr.Discard(), func(error) bool { return true })
	g.Expect(err).NotTo(HaveOccurred())
	qrs, connected := make(chan session.QRCodes, 4), make(chan struct{}, 1)
	go func() {
		for ev := range cli.Events() {
			switch e := ev.(type) {
			case session.QRCodes:
				qrs <- e
			case session.Connected:
				connected <- struct{}{}
			}
		}
	}()
	g.Expect(cli.Connect(ctx)).To(Succeed())
	var qr session.QRCodes
	g.Eventually(qrs).WithTimeout(30 * time.Second).Should(Receive(&qr))
	ready, firstPublic := whatsapp.PreKeyPool(cli)
	g.Eventually(ready).WithTimeout(30 * time.Second).Should(BeClosed())
	first := firstPublic()

	const number = "15550009101"
	jid, err := srv.Phone(number).ScanQR(ctx, qr.Codes[0])
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(connected).WithTimeout(30 * time.Second).Should(Receive())
	d := srv.Device(jid)
	_, err = d.WaitStats(ctx, func(st fakewa.DeviceStats) bool { return st.PreKeys > 0 })
	g.Expect(err).NotTo(HaveOccurred())

	// The stored pre-key 1 is the pool's first (read by a second container on the same file).
	container, err := sqlstore.New(ctx, "sqlite", dsn(path), waLog.Noop)
	g.Expect(err).NotTo(HaveOccurred())
	dev, err := container.GetFirstDevice(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	k, err := dev.PreKeys.GetPreKey(ctx, 1)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(k.Pub[:]).To(Equal(first))
	g.Expect(dev.PreKeys.UploadedPreKeyCount(ctx)).To(BeNumerically(">=", 812))
	_ = container.Close()

	sent, err := srv.Phone("15550009102").SendText(ctx, types.NewJID(number, types.DefaultUserServer), "first words")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = d.WaitMailbox(ctx, func(st fakewa.MailboxStats) bool { return st.Pending == 0 && st.Receipts["delivery"] == 1 })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cli.Close()).To(Succeed())
	rows := inboxRows(g, path)
	g.Expect(rows).To(HaveLen(1))
	g.Expect(rows[0].Type).To(Equal(inbox.TypeMessage))
	g.Expect(rows[0].MessageID).To(Equal(sent.ID))
	g.Expect(text(g, rows[0])).To(Equal("first words"))
}
