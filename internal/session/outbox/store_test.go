package outbox_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
)

const chatA, chatB = "15550001111@s.whatsapp.net", "15550002222@s.whatsapp.net"

func TestEnqueueIsIdempotentOnTheCallerID(t *testing.T) {
	eachDatabase(t, func(t *testing.T, s *outbox.Store) {
		g := NewWithT(t)
		ctx := context.Background()
		first, created, err := s.Enqueue(ctx, outbox.Message{ID: "order-1", WAID: "3EB0AAAA", To: chatA, Text: "hi"})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(created).To(BeTrue())
		g.Expect(first.State).To(Equal(outbox.Queued))
		g.Expect(first.CreatedAt).To(BeTemporally("~", time.Now(), 5*time.Second))

		again, created, err := s.Enqueue(ctx, outbox.Message{ID: "order-1", WAID: "3EB0BBBB", To: chatA, Text: "hi"})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(created).To(BeFalse(), "the same id twice is one message")
		g.Expect(again.WAID).To(Equal("3EB0AAAA"), "with the first WhatsApp id")

		_, _, err = s.Enqueue(ctx, outbox.Message{ID: "order-1", WAID: "3EB0CCCC", To: chatA, Text: "other text"})
		g.Expect(err).To(MatchError(outbox.ErrConflict))
		n, err := s.Pending(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(n).To(Equal(1))

		_, err = s.Get(ctx, "nope")
		g.Expect(err).To(MatchError(outbox.ErrNotFound))
	})
}

func TestEnqueueRefusesBeyondTheLimit(t *testing.T) {
	eachDatabase(t, func(t *testing.T, s *outbox.Store) {
		g := NewWithT(t)
		ctx := context.Background()
		s.Limit = 2
		for _, id := range []string{"a", "b"} {
			_, _, err := s.Enqueue(ctx, outbox.Message{ID: id, WAID: "W" + id, To: chatA, Text: id})
			g.Expect(err).NotTo(HaveOccurred())
		}
		_, _, err := s.Enqueue(ctx, outbox.Message{ID: "c", WAID: "Wc", To: chatA, Text: "c"})
		g.Expect(err).To(MatchError(outbox.ErrFull))
		_, created, err := s.Enqueue(ctx, outbox.Message{ID: "a", WAID: "Wa2", To: chatA, Text: "a"})
		g.Expect(err).NotTo(HaveOccurred(), "a repeat of a stored id is answered even when full")
		g.Expect(created).To(BeFalse())
	})
}

func TestHeadsAreTheOldestUnfinishedMessagePerChat(t *testing.T) {
	eachDatabase(t, func(t *testing.T, s *outbox.Store) {
		g := NewWithT(t)
		ctx := context.Background()
		for _, m := range []outbox.Message{
			{ID: "a1", WAID: "Wa1", To: chatA, Text: "1"},
			{ID: "b1", WAID: "Wb1", To: chatB, Text: "1"},
			{ID: "a2", WAID: "Wa2", To: chatA, Text: "2"},
		} {
			_, _, err := s.Enqueue(ctx, m)
			g.Expect(err).NotTo(HaveOccurred())
		}
		heads, err := s.Heads(ctx, time.Now(), 10)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(ids(heads)).To(Equal([]string{"a1", "b1"}))
	})
}

func TestReceiptsOnlyMoveForward(t *testing.T) {
	eachDatabase(t, func(t *testing.T, s *outbox.Store) {
		g := NewWithT(t)
		ctx := context.Background()
		_, _, err := s.Enqueue(ctx, outbox.Message{ID: "m", WAID: "3EB0M", To: chatA, Text: "x"})
		g.Expect(err).NotTo(HaveOccurred())
		changed, err := s.Receipt(ctx, []string{"3EB0M"}, outbox.Delivered, time.Now())
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(changed).To(BeEmpty(), "a queued message was never sent: a receipt for it is not about it")

		// Read first (receipts can overtake each other), then a late delivery receipt.
		g.Expect(s.MarkSendingForTest(ctx, "m")).To(Succeed())
		changed, err = s.Receipt(ctx, []string{"3EB0M", "3EB0OTHER"}, outbox.Read, time.Now())
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(changed).To(Equal([]string{"m"}))
		changed, err = s.Receipt(ctx, []string{"3EB0M"}, outbox.Delivered, time.Now())
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(changed).To(BeEmpty())
		m, err := s.Get(ctx, "m")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(m.State).To(Equal(outbox.Read))
		g.Expect(m.SentAt.IsZero()).To(BeFalse(), "a read message was sent and delivered")
		g.Expect(m.DeliveredAt.IsZero()).To(BeFalse())
	})
}

func ids(ms []outbox.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}
