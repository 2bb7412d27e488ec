package events_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
)

// Without a dead-letter destination, events the sink gives up on stay in the inbox and start a
// stranding episode: reported once when it starts (OnHealth), counted while it lasts, ended by
// the sink's next delivery; the next give-up is a new episode.
func TestGivenUpEventsWithoutDeadLetterAreOneEpisodeUntilTheSinkDelivers(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	box, cursors := openInbox(t)
	put := func(id string) {
		chat := "15550001234@s.whatsapp.net"
		_, err := box.Put(ctx, inbox.Event{ID: inbox.EventID(inbox.TypeMessage, chat, chat, id), Type: inbox.TypeMessage,
			Chat: chat, Sender: chat, MessageID: id, Time: time.Now(), Data: []byte(`{"text":"personal"}`)})
		g.Expect(err).NotTo(HaveOccurred())
	}
	sink := newSwitchableSink(t, 0, http.StatusServiceUnavailable)

	var reports atomic.Int32
	d := &events.Deliverer{
		Sink: events.Sink{Name: "app", URL: sink.URL, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			MaxAge: 200 * time.Millisecond},
		Source: box, Cursors: cursors, Log: logr.Discard(), OnHealth: func() { reports.Add(1) },
	}
	g.Expect(d.Stranding()).To(Equal(events.Stranding{}), "no episode before any give-up")
	for _, id := range []string{"A1", "A2", "A3"} {
		put(id)
	}
	go func() { _ = d.Run(ctx) }()

	g.Eventually(d.Stats).WithTimeout(10 * time.Second).Should(HaveField("GaveUp", BeEquivalentTo(3)))
	g.Expect(d.Stranding()).To(Equal(events.Stranding{Episode: 1, Events: 3, Reason: events.GiveUpMaxAge}))
	g.Expect(d.Stats().Cursor).To(BeEquivalentTo(3), "the sink moved on")
	n, _, err := box.Backlog(ctx, 0)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(BeEquivalentTo(3), "the given-up events stay in the inbox")
	// One report when the sink started failing, one when the episode started: not one per event.
	g.Expect(reports.Load()).To(BeEquivalentTo(2))

	sink.down.Store(false)
	put("B1")
	g.Eventually(sink.delivered.Load).WithTimeout(10 * time.Second).Should(BeEquivalentTo(1))
	g.Eventually(d.Stranding).Should(Equal(events.Stranding{}), "a delivery ends the episode")

	sink.down.Store(true)
	put("C1")
	g.Eventually(d.Stranding).WithTimeout(10*time.Second).Should(Equal(events.Stranding{Episode: 2, Events: 1, Reason: events.GiveUpMaxAge}),
		"the next give-up is a new episode")
}
