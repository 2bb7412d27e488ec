package events_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	_ "modernc.org/sqlite"

	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
)

func openDB(t testing.TB) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "device.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// openInbox opens the inbox and the sink cursors on a fresh SQLite database, as the session
// does on its device store.
func openInbox(t testing.TB) (*inbox.Store, *events.Cursors) {
	t.Helper()
	db := openDB(t)
	box, err := inbox.Open(context.Background(), db, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	cursors, err := events.OpenCursors(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return box, cursors
}

// testSink is a webhook receiver that checks Standard Webhooks signatures with its own
// implementation of the scheme and keeps, per chat, the ids it accepted in order.
type testSink struct {
	key      []byte
	failRate float64 // share of requests answered 500 or 429 before reading them

	mu       sync.Mutex
	requests int
	badSigs  int
	byChat   map[string][]string
	types    map[string]string
	seen     map[string]int
}

func (s *testSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if rand.Float64() < s.failRate {
		if rand.IntN(2) == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		} else {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		}
		return
	}
	if !s.verify(r.Header, body) {
		s.badSigs++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Header.Get("ce-specversion") != "1.0" || r.Header.Get("ce-id") != r.Header.Get("webhook-id") {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id, chat := r.Header.Get("ce-id"), r.Header.Get("ce-subject")
	s.byChat[chat] = append(s.byChat[chat], id)
	s.types[id] = r.Header.Get("ce-type")
	s.seen[id]++
	w.WriteHeader(http.StatusAccepted)
}

func (s *testSink) verify(h http.Header, body []byte) bool {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

func newSink(key []byte, failRate float64) *testSink {
	return &testSink{key: key, failRate: failRate, byChat: map[string][]string{}, types: map[string]string{}, seen: map[string]int{}}
}

func fill(t testing.TB, box *inbox.Store, chats, perChat int) map[string][]string {
	t.Helper()
	want := map[string][]string{}
	for i := range perChat {
		for c := range chats {
			chat := fmt.Sprintf("1555000%04d@s.whatsapp.net", c)
			msgID := fmt.Sprintf("3EB0%04d%04d", c, i)
			ev := inbox.Event{
				ID: inbox.EventID(inbox.TypeMessage, chat, chat, msgID), Type: inbox.TypeMessage,
				Chat: chat, Sender: chat, MessageID: msgID, Time: time.Now(),
				Data: []byte(fmt.Sprintf(`{"text":"message %d"}`, i)),
			}
			if _, err := box.Put(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			want[chat] = append(want[chat], ev.ID)
		}
	}
	return want
}

func TestEveryEventReachesAFlakySinkInOrderPerChat(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	box, cursors := openInbox(t)
	want := fill(t, box, 5, 40)

	oldKey, err := events.ParseSecret("whsec_" + base64.StdEncoding.EncodeToString([]byte("old-key-old-key-old-key-old!")))
	g.Expect(err).NotTo(HaveOccurred())
	newKey := []byte("new-key-new-key-new-key-new!")
	sink := newSink(newKey, 0.3) // knows only the new key: rotation signs with both
	srv := httptest.NewServer(sink)
	defer srv.Close()

	d := &events.Deliverer{
		Sink: events.Sink{Name: "app", URL: srv.URL, Keys: [][]byte{oldKey, newKey},
			MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond},
		Source: box, Cursors: cursors, CESource: "/namespaces/ns/whatsappconnections/shop", Log: logr.Discard(),
	}
	go func() { _ = d.Run(ctx) }()

	g.Eventually(func() int64 { return d.Stats().Delivered }).WithTimeout(60 * time.Second).Should(BeEquivalentTo(200))
	sink.mu.Lock()
	defer sink.mu.Unlock()
	g.Expect(sink.badSigs).To(BeZero())
	for chat, ids := range want {
		g.Expect(sink.byChat[chat]).To(Equal(ids), "chat %s in inbox order, each id once", chat)
	}
	g.Expect(sink.requests).To(BeNumerically(">", 200), "some requests failed and were retried")
	for id, n := range sink.seen {
		g.Expect(n).To(Equal(1), id)
		g.Expect(sink.types[id]).To(Equal("io.waoperator.whatsapp.message.received"))
	}
	st := d.Stats()
	g.Expect(st.Retries).To(BeEquivalentTo(sink.requests - 200))
	g.Eventually(func() (int64, error) { return cursors.Get(ctx, "app") }).Should(BeEquivalentTo(200))
	sink.mu.Unlock()

	// A new deliverer (the next Lease holder) resumes at the stored cursor: only the new event
	// goes out.
	cancel()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	fill(t, box, 1, 41) // chat 0 message 40 is new; the others are redeliveries, stored once
	next := &events.Deliverer{Sink: events.Sink{Name: "app", URL: srv.URL, Keys: [][]byte{newKey},
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}, Source: box, Cursors: cursors, Log: logr.Discard()}
	go func() { _ = next.Run(ctx2) }()
	g.Eventually(func() int64 { return next.Stats().Delivered }).WithTimeout(30 * time.Second).Should(BeEquivalentTo(1))
	g.Consistently(func() int64 { return next.Stats().Delivered }).WithTimeout(300 * time.Millisecond).Should(BeEquivalentTo(1))
	sink.mu.Lock()
	g.Expect(sink.byChat["15550000000@s.whatsapp.net"]).To(HaveLen(41))
}

func TestSinkRefusalIsNotRetriedAndRetryAfterIsHonoured(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	box, cursors := openInbox(t)
	fill(t, box, 1, 2)

	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		switch len(times) {
		case 1:
			w.WriteHeader(http.StatusBadRequest) // first event: refused for good
		case 2:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable) // second event: later, please
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	d := &events.Deliverer{
		Sink:   events.Sink{Name: "app", URL: srv.URL, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Second},
		Source: box, Cursors: cursors, Log: logr.Discard(),
	}
	go func() { _ = d.Run(ctx) }()
	g.Eventually(func() events.Stats { return d.Stats() }).WithTimeout(30 * time.Second).Should(And(
		HaveField("Delivered", BeEquivalentTo(1)), HaveField("GaveUp", BeEquivalentTo(1)), HaveField("Cursor", BeEquivalentTo(2))))
	mu.Lock()
	defer mu.Unlock()
	g.Expect(times).To(HaveLen(3), "the 400 was not retried")
	g.Expect(times[2].Sub(times[1])).To(BeNumerically(">=", 900*time.Millisecond), "Retry-After: 1 was waited for")
}

func TestParseSecretRejectsWhatIsNotAKey(t *testing.T) {
	g := NewWithT(t)
	_, err := events.ParseSecret("whsec_not base64!")
	g.Expect(err).To(HaveOccurred())
	_, err = events.ParseSecret("whsec_" + base64.StdEncoding.EncodeToString([]byte("short")))
	g.Expect(err).To(HaveOccurred())
}
