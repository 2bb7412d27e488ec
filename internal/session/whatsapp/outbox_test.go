package whatsapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/types"
	"golang.org/x/time/rate"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// openForSending opens a paired store with an outbox that is not rate limited, connects it, and
// returns its outbox.
func openForSending(t *testing.T, g Gomega, srv *fakewa.Server, path string) (session.Client, *outbox.Outbox) {
	t.Helper()
	slot := &outbox.Slot{}
	opener := whatsapp.Opener{
		Store: session.StoreConfig{Type: "sqlite", SQLitePath: path}, Configure: srv.ConfigureClient,
		Send: whatsapp.SendOptions{Slot: slot, Rate: rate.Inf, Burst: 1},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := openConnected(ctx, g, opener)
	g.Eventually(cli.IsLoggedIn).WithTimeout(15 * time.Second).Should(BeTrue())
	g.Expect(slot.Get()).NotTo(BeNil(), "the open client's outbox is in the slot")
	return cli, slot.Get()
}

func TestOutboxMessagesReachEachPhoneOnceInOrderAndAreReadThere(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv, path, _ := startPaired(t, "15550009001")
	cli, box := openForSending(t, g, srv, path)
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	phones := []*fakewa.Phone{srv.Phone("15550009002"), srv.Phone("15550009003"), srv.Phone("15550009004")}
	const perPhone = 10
	var ids []string
	for i := range perPhone {
		for _, p := range phones {
			id := fmt.Sprintf("%s-%02d", p.Number(), i)
			_, created, err := box.Submit(ctx, outbox.Request{ID: id, To: p.JID().String(), Text: id})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(created).To(BeTrue())
			ids = append(ids, id)
		}
	}
	// A caller that repeats a request (its first answer was lost) queues nothing new.
	_, created, err := box.Submit(ctx, outbox.Request{ID: ids[0], To: phones[0].JID().String(), Text: ids[0]})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(created).To(BeFalse())

	for _, p := range phones {
		got, err := p.WaitReceived(ctx, func(r []fakewa.ReceivedMessage) bool { return len(r) >= perPhone })
		g.Expect(err).NotTo(HaveOccurred())
		var texts []string
		for _, m := range got {
			g.Expect(m.Copies).To(Equal(1), "decrypted once: %s", m.ID)
			g.Expect(m.Chat).To(Equal("15550009001@s.whatsapp.net"))
			texts = append(texts, m.Text)
		}
		want := make([]string, perPhone)
		for i := range want {
			want[i] = fmt.Sprintf("%s-%02d", p.Number(), i)
		}
		g.Expect(texts).To(Equal(want), "every message once, in order")
	}
	stateOf := func(id string) outbox.State {
		m, err := box.Store.Get(ctx, id)
		g.Expect(err).NotTo(HaveOccurred())
		return m.State
	}
	for _, id := range ids {
		g.Eventually(func() outbox.State { return stateOf(id) }).WithTimeout(15*time.Second).Should(Equal(outbox.Delivered), id)
	}
	m, err := box.Store.Get(ctx, ids[0])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(m.Attempts).To(Equal(1))
	g.Expect(m.SentAt.IsZero()).To(BeFalse())
	g.Expect(m.DeliveredAt.IsZero()).To(BeFalse())
	g.Expect(phones[0].Received()[0].ID).To(Equal(m.WAID), "the phone got the outbox's WhatsApp id")

	// Each state the message reached is one status event for the sinks, without its text.
	var states []string
	for _, ev := range inboxRows(g, path) {
		if ev.Type == "message.status" && ev.MessageID == m.WAID {
			var body struct{ ID, State string }
			g.Expect(json.Unmarshal(ev.Data, &body)).To(Succeed())
			g.Expect(body.ID).To(Equal(ids[0]))
			g.Expect(string(ev.Data)).NotTo(ContainSubstring(`"text"`))
			states = append(states, body.State)
		}
	}
	// The phone's delivery receipt can overtake the server's acknowledgement: then "sent" is
	// never a state of its own (the message has its sent time either way).
	g.Expect(states).To(Or(Equal([]string{"queued", "sending", "sent", "delivered"}), Equal([]string{"queued", "sending", "delivered"})))

	g.Expect(phones[1].MarkRead()).To(Equal(perPhone))
	for _, id := range ids {
		if id[:11] == phones[1].Number() {
			g.Eventually(func() outbox.State { return stateOf(id) }).WithTimeout(15*time.Second).Should(Equal(outbox.Read), id)
		}
	}
	g.Expect(stateOf(ids[0])).To(Equal(outbox.Delivered), "phone 1's messages are not read")
}

func TestOutboxFailsAMessageToANumberNotOnWhatsApp(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv, path, _ := startPaired(t, "15550009011")
	cli, box := openForSending(t, g, srv, path)
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	nobody := types.NewJID("15550009019", types.DefaultUserServer).String()
	_, _, err := box.Submit(ctx, outbox.Request{ID: "x", To: nobody, Text: "hello?"})
	g.Expect(err).NotTo(HaveOccurred())
	m, err := box.Wait(ctx, "x", func(m outbox.Message) bool { return m.State == outbox.Failed })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(m.Reason).To(Equal("the number is not on WhatsApp"))
	g.Expect(m.Attempts).To(Equal(1))
}
