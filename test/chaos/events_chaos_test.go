package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// The events chaos proof (issue 15): what the phones send reaches the sink, every message at
// least once and in order per chat, while the session pod is killed again and again and the sink
// refuses a share of the requests and is down for a while.
const (
	chaosMessages  = 500
	chaosPhones    = 5
	chaosChats     = 10 // each phone's direct chat, and chaosPhones groups with two writers each
	chaosKills     = 5
	chaosFailShare = 0.3
	chaosSinkDown  = 20 * time.Second
	// chaosSendEvery paces the phones so that the kills and the outage fall among the messages
	// (about 40 s of sending), not after them.
	chaosSendEvery = 80 * time.Millisecond
)

// chaosSink is the user's service: it answers 503 to a share of the requests, and to every
// request while down, and records the WhatsApp message ids it accepted per chat, in arrival
// order, duplicates (same CloudEvents id) included.
type chaosSink struct {
	down     atomic.Bool
	failRate float64

	mu       sync.Mutex
	byChat   map[string][]string
	seen     map[string]int // CloudEvents id → times accepted
	refused  int
	rejected []string // requests it could not read: a bug, reported
}

func (s *chaosSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down.Load() || rand.Float64() < s.failRate {
		s.refused++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var msg struct{ ID, Chat string }
	if err := json.Unmarshal(body, &msg); err != nil || msg.Chat != r.Header.Get("ce-subject") || r.Header.Get("ce-id") == "" {
		s.rejected = append(s.rejected, fmt.Sprintf("ce-id=%q ce-subject=%q: %v", r.Header.Get("ce-id"), r.Header.Get("ce-subject"), err))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.byChat[msg.Chat] = append(s.byChat[msg.Chat], msg.ID)
	s.seen[r.Header.Get("ce-id")]++
	w.WriteHeader(http.StatusNoContent)
}

// firstArrivals is, per chat, the ids in the order they first arrived: delivery is at least
// once, and what was in flight when a session died comes again (same id) after what followed
// it may have been delivered; order is about first arrivals.
func (s *chaosSink) firstArrivals() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for chat, ids := range s.byChat {
		seen := map[string]bool{}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				out[chat] = append(out[chat], id)
			}
		}
	}
	return out
}

func (s *chaosSink) figures() (duplicates, refused int, rejected []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.seen {
		duplicates += n - 1
	}
	return duplicates, s.refused, slices.Clone(s.rejected)
}

// sentLog is what the phones sent, per chat, in sending order.
type sentLog struct {
	mu     sync.Mutex
	byChat map[string][]string
	n      atomic.Int64
}

func (l *sentLog) add(chat, id string) {
	l.mu.Lock()
	l.byChat[chat] = append(l.byChat[chat], id)
	l.mu.Unlock()
	l.n.Add(1)
}

func (l *sentLog) snapshot() map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]string{}
	for k, v := range l.byChat {
		out[k] = slices.Clone(v)
	}
	return out
}

// lostAndReordered compares what the sink got with what was sent: ids never delivered, and
// chats whose first arrivals are not in sending order (with the first position that differs).
func lostAndReordered(sent, got map[string][]string) (lost int, reordered []string) {
	for chat, ids := range sent {
		have := map[string]bool{}
		for _, id := range got[chat] {
			have[id] = true
		}
		var delivered []string // the sent ids the sink has, in sending order
		for _, id := range ids {
			if have[id] {
				delivered = append(delivered, id)
			} else {
				lost++
			}
		}
		for i, id := range got[chat] {
			if i >= len(delivered) || delivered[i] != id {
				reordered = append(reordered, fmt.Sprintf("%s: first arrival #%d is %s, sent #%d", chat, i, id, slices.Index(ids, id)))
				break
			}
		}
	}
	return lost, reordered
}

func TestChaosEvents(t *testing.T) {
	g := NewWithT(t)
	dir, err := os.MkdirTemp("", "chaos-events-")
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs kept in %s (stack.log, run/pods/<uid>/session.log)", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})

	sink := &chaosSink{failRate: chaosFailShare, byChat: map[string][]string{}, seen: map[string]int{}}
	hook := httptest.NewServer(sink)
	t.Cleanup(hook.Close)

	start := time.Now()
	s := startStack(t, dir) // builds the session binary before any wait
	h := &harness{t: t, s: s, conns: []string{"events"}, jids: map[string]types.JID{}, pids: map[k8stypes.UID]int{},
		events: &whatsappv1alpha1.EventsSpec{Sinks: []whatsappv1alpha1.EventSink{{
			Name:        "app",
			Destination: whatsappv1alpha1.Destination{URI: hook.URL + "/whatsapp"},
			Delivery: &whatsappv1alpha1.EventDelivery{
				BackoffDelay: &metav1.Duration{Duration: 100 * time.Millisecond},
				BackoffMax:   &metav1.Duration{Duration: time.Second},
			},
		}}}}
	h.pair()
	name := h.conns[0]
	account := h.jids[name].ToNonAD()
	t.Logf("stack up and paired in %s", time.Since(start).Round(time.Millisecond))

	// Five phones write in ten chats: each its direct chat, and group j where phones j and j+1
	// take turns, so a group's order is the order of two senders' messages.
	phones := make([]string, chaosPhones)
	for i := range phones {
		phones[i] = fmt.Sprintf("1555000%04d", 3000+i)
	}
	groups := make([]types.JID, chaosChats-chaosPhones)
	for j := range groups {
		groups[j] = types.NewJID(fmt.Sprintf("1203630000000%05d", j), types.GroupServer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The device's pre-keys reach the fake server shortly after login.
	sent := &sentLog{byChat: map[string][]string{}}
	g.Eventually(func() error {
		m, err := s.fw.Phone(phones[0]).SendText(ctx, account, "hello")
		if err == nil {
			sent.byChat[types.NewJID(phones[0], types.DefaultUserServer).String()] = []string{m.ID}
		}
		return err
	}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	sendErr := make(chan error, 1)
	go func() {
		defer close(sendErr)
		tick := time.NewTicker(chaosSendEvery)
		defer tick.Stop()
		for i := range chaosMessages {
			c := i % chaosChats
			text := fmt.Sprintf("message %d in chat %d", i, c)
			var err error
			var id, chat string
			if c < chaosPhones {
				m, e := s.fw.Phone(phones[c]).SendText(ctx, account, text)
				id, chat, err = m.ID, types.NewJID(phones[c], types.DefaultUserServer).String(), e
			} else {
				j := c - chaosPhones
				writer := phones[(j+(i/chaosChats)%2)%chaosPhones]
				m, e := s.fw.Phone(writer).SendGroupText(ctx, groups[j], account, text)
				id, chat, err = m.ID, groups[j].String(), e
			}
			if err != nil {
				sendErr <- fmt.Errorf("message %d: %w", i, err)
				return
			}
			sent.add(chat, id)
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()

	// The sink goes down for chaosSinkDown from the second kill on (a third of the messages out).
	outage := make(chan struct{})

	// Kill k comes once k+1 sixths of the messages are out, alternately a SIGKILL of the session
	// process and a deletion of its pod with no grace period; each waits until a new pod's
	// session is Connected.
	var failovers []time.Duration
	for k := range chaosKills {
		g.Eventually(sent.n.Load).WithTimeout(2*time.Minute).WithPolling(50*time.Millisecond).
			Should(BeNumerically(">=", int64((k+1)*chaosMessages/(chaosKills+1))), "the phones keep sending")
		if k == 1 {
			sink.down.Store(true)
			time.AfterFunc(chaosSinkDown, func() { sink.down.Store(false); close(outage) })
		}
		pod := s.census.current(name)
		g.Expect(pod).NotTo(BeNil(), "one session pod before kill %d", k+1)
		at := time.Now()
		if k%2 == 0 {
			pid, _, ok := sessionProcess(pod.UID, 0)
			g.Expect(ok).To(BeTrue(), "the session process of pod %s", pod.UID)
			g.Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		} else {
			g.Expect(s.c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: pod.Name}},
				client.Preconditions{UID: &pod.UID}, client.GracePeriodSeconds(0))).To(Succeed())
		}
		g.Eventually(func() string {
			st := h.observe(ctx)[name]
			if st.connected && st.holder != pod.UID {
				return ""
			}
			return st.why
		}).WithTimeout(recoveryBound).WithPolling(pollInterval).Should(BeEmpty(), "Connected again after kill %d", k+1)
		failovers = append(failovers, time.Since(at))
	}
	g.Eventually(sendErr).WithTimeout(2 * time.Minute).Should(BeClosed())
	g.Expect(<-sendErr).NotTo(HaveOccurred())
	g.Eventually(outage).WithTimeout(time.Minute).Should(BeClosed(), "the sink is back")
	g.Expect(sent.n.Load()).To(BeEquivalentTo(chaosMessages))
	want := sent.snapshot()
	g.Expect(want).To(HaveLen(chaosChats))

	var lost int
	var reordered []string
	g.Eventually(func() int {
		lost, reordered = lostAndReordered(want, sink.firstArrivals())
		return lost
	}).WithTimeout(3*time.Minute).WithPolling(500*time.Millisecond).Should(BeZero(), "every message reaches the sink")
	duplicates, refused, rejected := sink.figures()
	t.Logf("events chaos: %d messages from %d phones in %d chats, %d session kills (failover %v), sink down %s and refusing %.0f%% (%d requests refused): lost %d, reordered chats %d, duplicates (same id) %d; %s",
		chaosMessages, chaosPhones, chaosChats, chaosKills, failovers, chaosSinkDown, chaosFailShare*100, refused, lost, len(reordered), duplicates,
		time.Since(start).Round(time.Second))
	g.Expect(reordered).To(BeEmpty(), "each chat's first arrivals are in sending order")
	g.Expect(rejected).To(BeEmpty(), "every request the sink read was a well-formed CloudEvent")
	g.Expect(refused).To(BeNumerically(">", 0), "the sink did refuse requests")
}
