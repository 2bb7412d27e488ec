package whatsapp_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/types"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// orderSink accepts signed CloudEvents, fails a share of requests, and keeps per chat the
// WhatsApp message ids it accepted, in order.
type orderSink struct {
	key []byte

	mu      sync.Mutex
	byChat  map[string][]string
	texts   map[string]string
	badSigs int
	failed  int
}

func (s *orderSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	if rand.Float64() < 0.3 {
		s.failed++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "." + string(body)))
	if r.Header.Get("webhook-signature") != "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
		s.badSigs++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var msg struct{ ID, Chat, Text string }
	if json.Unmarshal(body, &msg) != nil || r.Header.Get("ce-subject") != msg.Chat ||
		r.Header.Get("ce-type") != "io.waoperator.whatsapp.message.received" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.byChat[msg.Chat] = append(s.byChat[msg.Chat], msg.ID)
	s.texts[msg.ID] = msg.Text
	w.WriteHeader(http.StatusOK)
}

func TestPhoneMessagesReachASinkInOrderPerChat(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv, path, d := startPaired(t, "15550008201")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	sink := &orderSink{key: []byte("a-signing-key-of-32-bytes-long!!"), byChat: map[string][]string{}, texts: map[string]string{}}
	hook := httptest.NewServer(sink)
	defer hook.Close()
	opener := whatsapp.Opener{
		Store: session.StoreConfig{Type: "sqlite", SQLitePath: path}, Configure: srv.ConfigureClient,
		Sinks: []events.Sink{{Name: "app", URL: hook.URL, Keys: [][]byte{sink.key}, Types: []string{inbox.TypeMessage},
			MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}},
		EventSource: "/namespaces/default/whatsappconnections/shop",
		// Delivered events leave the inbox at once (the default keeps them 7 days).
		InboxRetention: time.Nanosecond, PruneEvery: 50 * time.Millisecond,
	}
	cli := openConnected(ctx, g, opener)
	defer func() { _ = cli.Close() }()

	to := types.NewJID("15550008201", types.DefaultUserServer)
	phones := []*fakewa.Phone{srv.Phone("15550008202"), srv.Phone("15550008203"), srv.Phone("15550008204")}
	want := map[string][]string{}
	for i := range 8 {
		for _, p := range phones {
			sent, err := p.SendText(ctx, to, strings.Repeat("x", i+1))
			g.Expect(err).NotTo(HaveOccurred())
			want[p.JID().String()] = append(want[p.JID().String()], sent.ID)
		}
	}
	g.Eventually(func() int {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		n := 0
		for _, ids := range sink.byChat {
			n += len(ids)
		}
		return n
	}).WithTimeout(time.Minute).Should(Equal(24))
	_, err := d.WaitMailbox(ctx, func(st fakewa.MailboxStats) bool { return st.Pending == 0 })
	g.Expect(err).NotTo(HaveOccurred())
	sink.mu.Lock()
	defer sink.mu.Unlock()
	g.Expect(sink.byChat).To(Equal(want), "every message, once, in order per chat")
	g.Expect(sink.badSigs).To(BeZero())
	g.Expect(sink.texts[want[phones[0].JID().String()][7]]).To(Equal("xxxxxxxx"))
	g.Expect(sink.failed).To(BeNumerically(">", 0), "the sink failed some requests, which were retried")
	g.Eventually(func() []inbox.Event { return inboxRows(g, path) }).Should(BeEmpty(), "delivered rows are pruned")
}
