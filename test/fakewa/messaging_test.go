package fakewa_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// pairedWithKeys is a paired, logged-in client whose pre-keys are on the
// server, so phones can encrypt to it.
func pairedWithKeys(t *testing.T, srv *fakewa.Server, number string) (*client, *fakewa.Device, string) {
	t.Helper()
	c, d, path := paired(t, srv, number)
	if _, err := d.WaitStats(ctxT(t), func(st fakewa.DeviceStats) bool { return st.PreKeys > 0 }); err != nil {
		t.Fatalf("the device never uploaded pre-keys: %v", err)
	}
	return c, d, path
}

// reconnect builds a new client on the store at path, lets configure set it
// up before Connect, and waits until it is connected.
func reconnect(t *testing.T, srv *fakewa.Server, path string, configure func(*client)) *client {
	t.Helper()
	c := newClient(t, srv, path)
	if configure != nil {
		configure(c)
	}
	if err := c.Connect(); err != nil {
		t.Fatalf("connect: %v", err)
	}
	waitNth[*events.Connected](t, c.events, 1)
	return c
}

func account(number string) types.JID { return types.NewJID(number, types.DefaultUserServer) }

func TestPhoneTextIsDecryptedByTheDevice(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, _ := pairedWithKeys(t, srv, "15550007001")
	keysBefore := d.Stats().PreKeys
	sender := srv.Phone("15550007002")

	first, err := sender.SendText(ctxT(t), account("15550007001"), "hello from the phone")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(first.Devices).To(HaveLen(1))
	g.Expect(first.Devices[0].Device).To(Equal(d.JID().String()))
	g.Expect(first.Devices[0].Encryption).To(Equal("pkmsg"), "the first message opens the session from an uploaded pre-key")
	g.Expect(d.Stats().PreKeys).To(Equal(keysBefore-1), "the phone consumed one one-time pre-key")

	msg := waitNth[*events.Message](t, c.events, 1)
	g.Expect(msg.Message.GetConversation()).To(Equal("hello from the phone"))
	g.Expect(msg.Info.ID).To(Equal(first.ID))
	g.Expect(msg.Info.Sender.User).To(Equal("15550007002"))
	g.Expect(msg.Info.Chat).To(Equal(account("15550007002")))
	g.Expect(msg.Info.IsFromMe).To(BeFalse())

	// The device's delivery receipt reaches the phone and empties the mailbox.
	_, err = sender.WaitSent(ctxT(t), func(sent []fakewa.SentMessage) bool {
		return len(sent) == 1 && sent[0].Devices[0].DeliveredAt != nil
	})
	g.Expect(err).NotTo(HaveOccurred())

	second, err := sender.SendText(ctxT(t), account("15550007001"), "and a second one")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(second.Devices[0].Encryption).To(Equal("msg"), "after the device confirmed the session")
	msg = waitNth[*events.Message](t, c.events, 2)
	g.Expect(msg.Message.GetConversation()).To(Equal("and a second one"))

	st, err := d.WaitMailbox(ctxT(t), func(st fakewa.MailboxStats) bool { return st.Receipts["delivery"] == 2 })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(st.Pending).To(BeZero())
	g.Expect(st.Routed).To(Equal(2))
	g.Expect(st.Writes).To(Equal(2))
	g.Expect(st.Redeliveries).To(BeZero())

	// A read receipt from the device is recorded on the phone's message.
	g.Expect(c.MarkRead(ctxT(t), []types.MessageID{first.ID, second.ID}, time.Now(), account("15550007002"), account("15550007002"))).To(Succeed())
	sent, err := sender.WaitSent(ctxT(t), func(sent []fakewa.SentMessage) bool {
		return len(sent) == 2 && sent[0].Devices[0].ReadAt != nil && sent[1].Devices[0].ReadAt != nil
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sent[0].ID).To(Equal(first.ID))
}

func TestMessagesSentWhileOfflineArriveInOrderAtNextLogin(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, path := pairedWithKeys(t, srv, "15550007011")
	c.Disconnect()
	_, err := d.WaitStats(ctxT(t), func(st fakewa.DeviceStats) bool { return st.Live == 0 })
	g.Expect(err).NotTo(HaveOccurred())

	sender := srv.Phone("15550007012")
	texts := []string{"one", "two", "three"}
	for _, text := range texts {
		_, err := sender.SendText(ctxT(t), account("15550007011"), text)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(d.Mailbox().Pending).To(Equal(3), "queued while the device is offline")
	g.Expect(d.Mailbox().Writes).To(BeZero())

	again := reconnect(t, srv, path, nil)
	for i, text := range texts {
		g.Expect(waitNth[*events.Message](t, again.events, i+1).Message.GetConversation()).To(Equal(text))
	}
	g.Expect(waitNth[*events.OfflineSyncCompleted](t, again.events, 1).Count).To(Equal(3))
	_, err = d.WaitMailbox(ctxT(t), func(st fakewa.MailboxStats) bool { return st.Pending == 0 && st.Receipts["delivery"] == 3 })
	g.Expect(err).NotTo(HaveOccurred())
}

func TestUnacknowledgedMessageIsRedeliveredAfterReconnect(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, path := pairedWithKeys(t, srv, "15550007021")
	c.Disconnect()
	_, err := d.WaitStats(ctxT(t), func(st fakewa.DeviceStats) bool { return st.Live == 0 })
	g.Expect(err).NotTo(HaveOccurred())

	// A client that acks only after its handler succeeded, and whose
	// handler fails: as a session that could not commit the message.
	var refused atomic.Int32
	failing := reconnect(t, srv, path, func(c *client) {
		c.SynchronousAck = true
		c.EnableDecryptedEventBuffer = true
		c.AddEventHandlerWithSuccessStatus(func(evt any) bool {
			if _, ok := evt.(*events.Message); ok {
				refused.Add(1)
				return false
			}
			return true
		})
	})
	sender := srv.Phone("15550007022")
	sent, err := sender.SendText(ctxT(t), account("15550007021"), "keep me")
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(refused.Load).Should(BeEquivalentTo(1))
	st := d.Mailbox()
	g.Expect(st.Pending).To(Equal(1), "no receipt, no ack: the message stays queued")
	g.Expect(st.Writes).To(Equal(1))
	g.Expect(st.Receipts).To(BeEmpty())
	failing.Disconnect()
	_, err = d.WaitStats(ctxT(t), func(st fakewa.DeviceStats) bool { return st.Live == 0 })
	g.Expect(err).NotTo(HaveOccurred())

	var mu sync.Mutex
	var accepted []*events.Message
	again := reconnect(t, srv, path, func(c *client) {
		c.SynchronousAck = true
		c.EnableDecryptedEventBuffer = true
		c.AddEventHandlerWithSuccessStatus(func(evt any) bool {
			if m, ok := evt.(*events.Message); ok {
				mu.Lock()
				accepted = append(accepted, m)
				mu.Unlock()
			}
			return true
		})
	})
	_ = again
	st, err = d.WaitMailbox(ctxT(t), func(st fakewa.MailboxStats) bool { return st.Pending == 0 })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(st.Redeliveries).To(Equal(1))
	g.Expect(st.Receipts["delivery"]).To(Equal(1))
	mu.Lock()
	defer mu.Unlock()
	g.Expect(accepted).To(HaveLen(1))
	g.Expect(accepted[0].Info.ID).To(Equal(sent.ID))
	g.Expect(accepted[0].Message.GetConversation()).To(Equal("keep me"), "the redelivered pkmsg decrypts again (decrypted-event buffer)")
}

func TestUndecryptableMessageGetsRetryReceipt(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, _ := pairedWithKeys(t, srv, "15550007031")
	sender := srv.Phone("15550007032")
	sent, err := sender.SendUndecryptable(ctxT(t), account("15550007031"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sent.Devices[0].Encryption).To(Equal("corrupt"))

	evt := waitNth[*events.UndecryptableMessage](t, c.events, 1)
	g.Expect(evt.Info.ID).To(Equal(sent.ID))
	g.Expect(count[*events.Message](c.events)).To(BeZero())
	_, err = sender.WaitSent(ctxT(t), func(s []fakewa.SentMessage) bool {
		return len(s) == 1 && s[0].Devices[0].RetryReceipts == 1 && s[0].Devices[0].Acked
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d.Mailbox().Pending).To(BeZero(), "the ack ends the message's life on the server")
}

func TestDeviceFetchesAPhonesPreKeys(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, _, _ := pairedWithKeys(t, srv, "15550007041")
	phone := srv.Phone("15550007042")
	_, err := phone.SendText(ctxT(t), account("15550007041"), "publishes the phone's keys")
	g.Expect(err).NotTo(HaveOccurred())

	unknown := account("15550007049")
	// whatsmeow fetches pre-keys only inside its send path; its internals are the way in.
	internals := c.DangerousInternals() //nolint:staticcheck // see above
	got := internals.FetchPreKeysNoError(ctxT(t), []types.JID{phone.JID(), phone.JID()})
	g.Expect(got).To(HaveKey(phone.JID()))
	b := got[phone.JID()]
	g.Expect(b.PreKeyID()).NotTo(BeNil())
	g.Expect(b.IdentityKey()).NotTo(BeNil())
	again := internals.FetchPreKeysNoError(ctxT(t), []types.JID{phone.JID(), unknown})
	g.Expect(again).To(HaveKey(phone.JID()))
	g.Expect(again).NotTo(HaveKey(unknown), "a JID without keys gets an error entry")
	g.Expect(again[phone.JID()].PreKeyID().Value).NotTo(Equal(b.PreKeyID().Value), "each one-time pre-key is handed out once")
}

func TestControlAPISendsAMessage(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv := startServer(t, fakewa.Options{})
	c, d, _ := pairedWithKeys(t, srv, "15550007051")
	api := httptest.NewServer(srv.ControlHandler())
	t.Cleanup(api.Close)

	body, _ := json.Marshal(map[string]string{"to": d.JID().String(), "text": "via the control API"})
	resp, err := http.Post(api.URL+"/phones/15550007052/messages", "application/json", bytes.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	var sent fakewa.SentMessage
	g.Expect(json.NewDecoder(resp.Body).Decode(&sent)).To(Succeed())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusAccepted))
	msg := waitNth[*events.Message](t, c.events, 1)
	g.Expect(msg.Info.ID).To(Equal(sent.ID))
	g.Expect(msg.Message.GetConversation()).To(Equal("via the control API"))

	for _, bad := range []struct {
		body   string
		status int
	}{
		{`{"to":"15550007059@s.whatsapp.net","text":"x"}`, http.StatusNotFound},
		{`{"to":"15550007051@s.whatsapp.net","text":"x"}`, http.StatusAccepted},
		{`{"to":"123@g.us","text":"x"}`, http.StatusBadRequest},
		{`{"to":"15550007052@s.whatsapp.net","text":"x"}`, http.StatusBadRequest},
	} {
		resp, err := http.Post(api.URL+"/phones/15550007052/messages", "application/json", bytes.NewReader([]byte(bad.body)))
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(bad.status), bad.body)
	}
	resp, err = http.Get(api.URL + "/devices/" + d.JID().String() + "/mailbox")
	g.Expect(err).NotTo(HaveOccurred())
	var st fakewa.MailboxStats
	g.Expect(json.NewDecoder(resp.Body).Decode(&st)).To(Succeed())
	_ = resp.Body.Close()
	g.Expect(st.Routed).To(Equal(2))
}
