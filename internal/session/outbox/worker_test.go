package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"golang.org/x/time/rate"

	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
)

// scriptedSender records every attempt and answers with the next scripted error for the
// message's text (nil when the script is empty).
type scriptedSender struct {
	mu       sync.Mutex
	script   map[string][]error
	attempts []attempt
	// hold, when set for a text, blocks its send until the channel closes or ctx ends.
	hold map[string]chan struct{}
}

type attempt struct {
	to, text, waID string
	at             time.Time
}

func (s *scriptedSender) Send(ctx context.Context, to, text, waID string) (time.Time, error) {
	s.mu.Lock()
	s.attempts = append(s.attempts, attempt{to, text, waID, time.Now()})
	var err error
	if q := s.script[text]; len(q) > 0 {
		err, s.script[text] = q[0], q[1:]
	}
	hold := s.hold[text]
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
	return time.Now(), err
}

func (s *scriptedSender) sent() []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]attempt(nil), s.attempts...)
}

func newSQLiteStore(t *testing.T) (*outbox.Store, *sql.DB) {
	db := databases["sqlite"](t)
	s, err := outbox.Open(context.Background(), db, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

// start runs o's worker with quick retries and no rate limit (unless configure sets one) until
// the test ends.
func start(t *testing.T, o *outbox.Outbox, configure ...func(*outbox.Worker)) {
	o.Worker.Log = logr.Discard()
	o.Worker.Rate, o.Worker.Burst = rate.Inf, 1
	o.Worker.Backoff, o.Worker.MaxBackoff = 20*time.Millisecond, 50*time.Millisecond
	o.Worker.UnavailableWait = 20 * time.Millisecond
	for _, c := range configure {
		c(o.Worker)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Worker.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func state(g Gomega, o *outbox.Outbox, id string) func() outbox.State {
	return func() outbox.State {
		m, err := o.Store.Get(context.Background(), id)
		g.Expect(err).NotTo(HaveOccurred())
		return m.State
	}
}

func submit(g Gomega, o *outbox.Outbox, id, to, text string) outbox.Message {
	m, _, err := o.Submit(context.Background(), outbox.Request{ID: id, To: to, Text: text})
	g.Expect(err).NotTo(HaveOccurred())
	return m
}

func TestAChatWaitingForARetryHoldsNeitherItsOrderNorOtherChats(t *testing.T) {
	g := NewWithT(t)
	store, _ := newSQLiteStore(t)
	timeout := errors.New("message send timed out")
	sender := &scriptedSender{script: map[string][]error{"a1": {timeout, timeout}}}
	o := outbox.New(store, sender)
	a1 := submit(g, o, "a1", chatA, "a1")
	submit(g, o, "a2", chatA, "a2")
	submit(g, o, "b1", chatB, "b1")
	submit(g, o, "b2", chatB, "b2")
	start(t, o)

	g.Eventually(state(g, o, "a2")).Should(Equal(outbox.Sent))
	g.Eventually(state(g, o, "b2")).Should(Equal(outbox.Sent))
	var textsA, waIDsA1 []string
	for _, a := range sender.sent() {
		if a.to == chatA {
			textsA = append(textsA, a.text)
		}
		if a.text == "a1" {
			waIDsA1 = append(waIDsA1, a.waID)
		}
	}
	g.Expect(textsA).To(Equal([]string{"a1", "a1", "a1", "a2"}), "a2 waits until a1 is sent")
	g.Expect(waIDsA1).To(Equal([]string{a1.WAID, a1.WAID, a1.WAID}), "every retry is the same WhatsApp message")
	m, err := store.Get(context.Background(), "a1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(m.Attempts).To(Equal(3))
	g.Expect(m.Reason).To(BeEmpty(), "sent: the timeouts are history")
	g.Expect(m.SentAt.IsZero()).To(BeFalse())
}

func TestOtherChatsGoOnWhileOneChatsSendHangs(t *testing.T) {
	g := NewWithT(t)
	store, _ := newSQLiteStore(t)
	release := make(chan struct{})
	sender := &scriptedSender{hold: map[string]chan struct{}{"a1": release}}
	o := outbox.New(store, sender)
	submit(g, o, "a1", chatA, "a1")
	submit(g, o, "a2", chatA, "a2")
	for _, id := range []string{"b1", "b2", "b3"} {
		submit(g, o, id, chatB, id)
	}
	start(t, o)
	// a1 is held in its send; chat B may finish before or after a1 starts, so wait for both.
	g.Eventually(state(g, o, "a1")).Should(Equal(outbox.Sending))
	g.Eventually(state(g, o, "b3")).Should(Equal(outbox.Sent), "chat B is not behind chat A")
	g.Expect(state(g, o, "a2")()).To(Equal(outbox.Queued), "nothing overtakes a1 in its chat")
	close(release)
	g.Eventually(state(g, o, "a2")).Should(Equal(outbox.Sent))
}

func TestRefusedAndExhaustedMessagesFailWithAReason(t *testing.T) {
	g := NewWithT(t)
	store, _ := newSQLiteStore(t)
	timeout := errors.New("message send timed out")
	sender := &scriptedSender{script: map[string][]error{
		"refused":   {&outbox.PermanentError{Reason: "not on WhatsApp"}},
		"exhausted": {timeout, timeout, timeout},
	}}
	o := outbox.New(store, sender)
	o.Worker.MaxAttempts = 3
	submit(g, o, "refused", chatA, "refused")
	submit(g, o, "after", chatA, "after")
	submit(g, o, "exhausted", chatB, "exhausted")
	start(t, o)
	g.Eventually(state(g, o, "after")).Should(Equal(outbox.Sent), "a failed message does not block its chat")
	g.Eventually(state(g, o, "exhausted")).Should(Equal(outbox.Failed))
	refused, err := store.Get(context.Background(), "refused")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(refused.State).To(Equal(outbox.Failed))
	g.Expect(refused.Reason).To(Equal("not on WhatsApp"))
	g.Expect(refused.Attempts).To(Equal(1))
	g.Expect(refused.FailedAt.IsZero()).To(BeFalse())
	exhausted, err := store.Get(context.Background(), "exhausted")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(exhausted.Reason).To(Equal("gave up after 3 attempts: message send timed out"))
}

func TestUnavailableConnectionDoesNotSpendAttempts(t *testing.T) {
	g := NewWithT(t)
	store, _ := newSQLiteStore(t)
	down := errors.Join(outbox.ErrUnavailable)
	sender := &scriptedSender{script: map[string][]error{"x": {down, down, down, down, down, down}}}
	o := outbox.New(store, sender)
	o.Worker.MaxAttempts = 2
	submit(g, o, "x", chatA, "x")
	start(t, o)
	g.Eventually(state(g, o, "x")).Should(Equal(outbox.Sent))
	m, err := store.Get(context.Background(), "x")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(m.Attempts).To(Equal(1), "only the attempt WhatsApp saw counts")
	g.Expect(sender.sent()).To(HaveLen(7))
}

func TestAMessageLeftSendingIsSentAgainWithItsIDByTheNextWorker(t *testing.T) {
	g := NewWithT(t)
	store, _ := newSQLiteStore(t)
	hang := make(chan struct{})
	first := &scriptedSender{hold: map[string]chan struct{}{"x": hang}}
	o := outbox.New(store, first)
	m := submit(g, o, "x", chatA, "x")
	o.Worker.Log = logr.Discard()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Worker.Run(ctx) }()
	g.Eventually(first.sent).Should(HaveLen(1))
	cancel() // the Lease holder goes away mid-send
	<-done
	g.Expect(state(g, o, "x")()).To(Equal(outbox.Sending))

	second := &scriptedSender{}
	next := outbox.New(store, second)
	start(t, next)
	g.Eventually(state(g, next, "x")).Should(Equal(outbox.Sent))
	g.Expect(second.sent()[0].waID).To(Equal(m.WAID))
}

func TestTheRateLimitSpacesSends(t *testing.T) {
	g := NewWithT(t)
	store, _ := newSQLiteStore(t)
	sender := &scriptedSender{}
	o := outbox.New(store, sender)
	ids := []string{"1", "2", "3", "4", "5"}
	for i, id := range ids {
		submit(g, o, id, []string{chatA, chatB}[i%2], id)
	}
	start(t, o, func(w *outbox.Worker) { w.Rate, w.Burst = 20, 1 })
	g.Eventually(state(g, o, "5")).Should(Equal(outbox.Sent))
	g.Eventually(state(g, o, "4")).Should(Equal(outbox.Sent))
	sent := sender.sent()
	g.Expect(sent).To(HaveLen(5))
	// 20 a second with no burst: 4 intervals of 50 ms at least (less a little for the jitter
	// of when each send is recorded), across chats too.
	g.Expect(sent[4].at.Sub(sent[0].at)).To(BeNumerically(">=", 150*time.Millisecond))
}
