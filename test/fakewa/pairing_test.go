package fakewa_test

import (
	"testing"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// pairByQR connects an unpaired client, scans its first QR code with phone
// and waits for the client to log in after the 515 restart.
func pairByQR(t *testing.T, srv *fakewa.Server, c *client, phone *fakewa.Phone) *fakewa.Device {
	t.Helper()
	qrs := qrChannel(t, c)
	if err := c.Connect(); err != nil {
		t.Fatalf("connect: %v", err)
	}
	item := nextQR(t, c, qrs)
	if item.Event != whatsmeow.QRChannelEventCode {
		t.Fatalf("first QR channel item is %q, want a code", item.Event)
	}
	jid, err := phone.ScanQR(ctxT(t), item.Code)
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	waitNth[*events.Connected](t, c.events, 1)
	return srv.Device(jid)
}

func TestQRPairingLogsIn(t *testing.T) {
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	phone := srv.Phone("+1 555 000 1111")
	c := newClient(t, srv, storePath(t))

	qrs := qrChannel(t, c)
	g.Expect(c.Connect()).To(Succeed())

	qr := waitNth[*events.QR](t, c.events, 1)
	g.Expect(qr.Codes).To(HaveLen(6), "the real service hands out 6 refs")
	refs := map[string]bool{}
	for _, code := range qr.Codes {
		g.Expect(code).To(HavePrefix(fakewa.QRLinkPrefix), "whatsmeow 2026 shows a wa.me link")
		p, err := fakewa.ParseQR(code)
		g.Expect(err).NotTo(HaveOccurred())
		refs[p.Ref] = true
		g.Expect(p.NoiseKey).To(Equal(c.Store.NoiseKey.Pub[:]))
		g.Expect(p.IdentityKey).To(Equal(c.Store.IdentityKey.Pub[:]))
		g.Expect(p.ClientType).NotTo(BeEmpty())
	}
	g.Expect(refs).To(HaveLen(6), "every ref is distinct")

	item := nextQR(t, c, qrs)
	g.Expect(item.Event).To(Equal(whatsmeow.QRChannelEventCode))
	g.Expect(item.Code).To(Equal(qr.Codes[0]))

	jid, err := phone.ScanQR(ctxT(t), item.Code)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(jid.User).To(Equal("15550001111"))

	success := waitNth[*events.PairSuccess](t, c.events, 1)
	g.Expect(success.ID).To(Equal(jid))
	g.Expect(nextQR(t, c, qrs)).To(Equal(whatsmeow.QRChannelSuccess))

	waitNth[*events.Connected](t, c.events, 1)
	g.Expect(c.Store.ID).NotTo(BeNil())
	g.Expect(*c.Store.ID).To(Equal(jid))
	g.Expect(c.Store.GetLID().IsEmpty()).To(BeFalse(), "pair-success carries the LID")
	g.Expect(c.IsLoggedIn()).To(BeTrue())

	st := srv.Device(jid).Stats()
	g.Expect(st.Known).To(BeTrue())
	g.Expect(st.Live).To(Equal(1))
	g.Expect(st.Logins).To(Equal(1))
	g.Expect(st.PairingWindows).To(Equal(1))
	g.Expect(st.PreKeys).To(BeNumerically(">", 0), "the client uploads pre-keys after the server reports none")
	g.Expect(phone.Devices()).To(ConsistOf(jid))

	// keepalive pings are answered: the client reports no timeouts.
	_, err = srv.Device(jid).WaitStats(ctxT(t), func(st fakewa.DeviceStats) bool { return st.Pings >= 2 })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(count[*events.KeepAliveTimeout](c.events)).To(BeZero())
}
