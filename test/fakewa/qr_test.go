package fakewa_test

import (
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// testClock runs at real speed from an adjustable offset.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func (c *testClock) options() fakewa.Options { return fakewa.Options{Now: c.now} }

// qrChannel is whatsmeow's QR channel; read it with nextQR.
func qrChannel(t *testing.T, c *client) <-chan whatsmeow.QRChannelItem {
	t.Helper()
	ch, err := c.GetQRChannel(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestQRRefsRotateAndExpire(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	clock := &testClock{}
	srv := startServer(t, clock.options())
	c := newClient(t, srv, storePath(t))
	g.Expect(c.Connect()).To(Succeed())
	codes := waitNth[*events.QR](t, c.events, 1).Codes
	g.Expect(codes).To(HaveLen(6))
	phone := srv.Phone("15550301010")

	// Like the real service: the first ref lives 60s, each later one 20s more.
	clock.advance(61 * time.Second)
	_, err := phone.ScanQR(ctxT(t), codes[0])
	g.Expect(err).To(MatchError(fakewa.ErrRefExpired))
	clock.advance(20 * time.Second)
	_, err = phone.ScanQR(ctxT(t), codes[1])
	g.Expect(err).To(MatchError(fakewa.ErrRefExpired))

	jid, err := phone.ScanQR(ctxT(t), codes[2])
	g.Expect(err).NotTo(HaveOccurred(), "the third ref is still valid at 81s")
	waitNth[*events.Connected](t, c.events, 1)
	_, err = phone.ScanQR(ctxT(t), codes[3])
	g.Expect(err).To(MatchError(fakewa.ErrUnknownRef), "refs die with their pairing window")
	g.Expect(srv.Device(jid).Stats().PairingWindows).To(Equal(1))
}

func TestPairingWindowClosesAfterLastRef(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{QRRefs: 2, FirstRefTTL: 300 * time.Millisecond, NextRefTTL: 200 * time.Millisecond})
	c := newClient(t, srv, storePath(t))
	qrs := qrChannel(t, c)
	g.Expect(c.Connect()).To(Succeed())

	first := nextQR(t, c, qrs)
	g.Expect(first.Event).To(Equal(whatsmeow.QRChannelEventCode))
	g.Eventually(qrs, 5*time.Second).Should(Receive(Equal(whatsmeow.QRChannelTimeout)),
		"the server closes the registration connection after the last ref")
	g.Expect(srv.Stats().PairingWindows).To(Equal(1))
	_, err := srv.Phone("15550301111").ScanQR(ctxT(t), first.Code)
	g.Expect(err).To(MatchError(fakewa.ErrUnknownRef))

	// The same client (same noise key) tries again: a second window, which
	// the device inherits once paired.
	qrs = qrChannel(t, c)
	g.Expect(c.Connect()).To(Succeed())
	second := nextQR(t, c, qrs)
	g.Expect(second.Event).To(Equal(whatsmeow.QRChannelEventCode))
	g.Expect(second.Code).NotTo(Equal(first.Code))
	jid, err := srv.Phone("15550301111").ScanQR(ctxT(t), second.Code)
	g.Expect(err).NotTo(HaveOccurred())
	waitNth[*events.Connected](t, c.events, 1)
	g.Expect(srv.Device(jid).Stats().PairingWindows).To(Equal(2))
}

// nextQR receives the next item of a QR channel.
//
// whatsmeow's QR channel sends on one goroutine and closes on another
// (qrchan.go), ordered in practice by the pairing round trip over the
// network, which the race detector cannot see. Taking and releasing the
// client's event-handler lock after the receive gives the detector the
// ordering that really exists (dispatchEvent holds that lock when it closes
// the channel), so `go test -race` reports only real races.
func nextQR(t *testing.T, c *client, qrs <-chan whatsmeow.QRChannelItem) whatsmeow.QRChannelItem {
	t.Helper()
	select {
	case item := <-qrs:
		c.RemoveEventHandler(c.AddEventHandler(func(any) {}))
		return item
	case <-time.After(waitTimeout):
		t.Fatal("no QR channel item")
		return whatsmeow.QRChannelItem{}
	}
}
