package fakewa_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

func text(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }

// receiptsOf returns the ids the device got receipts of this type for.
func receiptsOf(c *client, typ types.ReceiptType) []types.MessageID {
	var ids []types.MessageID
	for _, e := range c.events.all() {
		if r, ok := e.(*events.Receipt); ok && r.Type == typ {
			ids = append(ids, r.MessageIDs...)
		}
	}
	return ids
}

func TestPhoneDecryptsWhatTheDeviceSends(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, _ := pairedWithKeys(t, srv, "15550008001")
	phone := srv.Phone("15550008002")

	first, err := c.SendMessage(ctxT(t), account("15550008002"), text("hello phone"))
	g.Expect(err).NotTo(HaveOccurred(), "the server acknowledged the message")
	second, err := c.SendMessage(ctxT(t), account("15550008002"), text("second"))
	g.Expect(err).NotTo(HaveOccurred())

	got, err := phone.WaitReceived(ctxT(t), func(r []fakewa.ReceivedMessage) bool { return len(r) == 2 })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got[0].ID).To(Equal(first.ID))
	g.Expect(got[0].Text).To(Equal("hello phone"))
	g.Expect(got[0].Chat).To(Equal(account("15550008001").String()), "the chat is the sender's account")
	g.Expect(got[0].From).To(Equal(d.JID().String()))
	g.Expect(got[0].Encryption).To(Equal("pkmsg"), "the device opened the session from the phone's pre-keys")
	g.Expect(got[0].Copies).To(Equal(1))
	g.Expect(got[1].ID).To(Equal(second.ID))
	g.Expect(got[1].Text).To(Equal("second"))
	g.Expect(phone.InboxStats().DecryptFailures).To(BeZero())

	// The phone's delivery receipts reach the device.
	g.Eventually(func() []types.MessageID { return receiptsOf(c, types.ReceiptTypeDelivered) }, waitTimeout).
		Should(ConsistOf(first.ID, second.ID))

	// Sending again with the same id (a retry) is decrypted but recorded once.
	_, err = c.SendMessage(ctxT(t), account("15550008002"), text("second"), whatsmeow.SendRequestExtra{ID: second.ID})
	g.Expect(err).NotTo(HaveOccurred())
	got, err = phone.WaitReceived(ctxT(t), func(r []fakewa.ReceivedMessage) bool { return len(r) == 2 && r[1].Copies == 2 })
	g.Expect(err).NotTo(HaveOccurred(), "got %+v", got)

	// The device's own phone gets a copy of what its linked device sent.
	own, err := srv.Phone("15550008001").WaitReceived(ctxT(t), func(r []fakewa.ReceivedMessage) bool { return len(r) == 2 })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(own[0].FromMe).To(BeTrue())
	g.Expect(own[0].Chat).To(Equal(account("15550008002").String()))
	g.Expect(own[0].Text).To(Equal("hello phone"))

	// Reading sends read receipts.
	g.Expect(phone.MarkRead(first.ID)).To(Equal(1))
	g.Eventually(func() []types.MessageID { return receiptsOf(c, types.ReceiptTypeRead) }, waitTimeout).
		Should(ConsistOf(first.ID))
	g.Expect(phone.MarkRead()).To(Equal(1), "the other unread one")
	g.Expect(phone.Received()[0].ReadAt).NotTo(BeNil())
}

func TestDeviceRepliesOnTheSessionThePhoneOpened(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, _, _ := pairedWithKeys(t, srv, "15550008011")
	phone := srv.Phone("15550008012")
	_, err := phone.SendText(ctxT(t), account("15550008011"), "hi device")
	g.Expect(err).NotTo(HaveOccurred())
	waitNth[*events.Message](t, c.events, 1)

	reply, err := c.SendMessage(ctxT(t), account("15550008012"), text("hi phone"))
	g.Expect(err).NotTo(HaveOccurred())
	got, err := phone.WaitReceived(ctxT(t), func(r []fakewa.ReceivedMessage) bool { return len(r) == 1 })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got[0].ID).To(Equal(reply.ID))
	g.Expect(got[0].Text).To(Equal("hi phone"))
	g.Expect(got[0].Encryption).To(Equal("msg"), "the session the phone's pkmsg opened")
}

func TestSendToAnUnknownNumberFails(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, _, _ := pairedWithKeys(t, srv, "15550008021")
	_, err := c.SendMessage(ctxT(t), account("15550008029"), text("nobody"))
	g.Expect(err).To(MatchError(ContainSubstring("no LID found")))
}

func TestReadReceiptsWaitForAnOfflineDevice(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, path := pairedWithKeys(t, srv, "15550008031")
	phone := srv.Phone("15550008032")
	sent, err := c.SendMessage(ctxT(t), account("15550008032"), text("read me later"))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = phone.WaitReceived(ctxT(t), func(r []fakewa.ReceivedMessage) bool { return len(r) == 1 })
	g.Expect(err).NotTo(HaveOccurred())
	c.Disconnect()
	_, err = d.WaitStats(ctxT(t), func(st fakewa.DeviceStats) bool { return st.Live == 0 })
	g.Expect(err).NotTo(HaveOccurred())

	api := httptest.NewServer(srv.ControlHandler())
	t.Cleanup(api.Close)
	resp, err := http.Post(api.URL+"/phones/15550008032/read", "application/json", bytes.NewReader([]byte(`{}`)))
	g.Expect(err).NotTo(HaveOccurred())
	var read map[string]int
	g.Expect(json.NewDecoder(resp.Body).Decode(&read)).To(Succeed())
	_ = resp.Body.Close()
	g.Expect(read["read"]).To(Equal(1))

	again := reconnect(t, srv, path, nil)
	g.Eventually(func() []types.MessageID { return receiptsOf(again, types.ReceiptTypeRead) }, waitTimeout).
		Should(ConsistOf(sent.ID), "the read receipt was kept for the offline device")

	resp, err = http.Get(api.URL + "/phones/15550008032/received")
	g.Expect(err).NotTo(HaveOccurred())
	var received []fakewa.ReceivedMessage
	g.Expect(json.NewDecoder(resp.Body).Decode(&received)).To(Succeed())
	_ = resp.Body.Close()
	g.Expect(received).To(HaveLen(1))
	g.Expect(received[0].Text).To(Equal("read me later"))
	g.Expect(received[0].ReadAt).NotTo(BeNil())
}
