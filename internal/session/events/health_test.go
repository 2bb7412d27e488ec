package events_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// A sink that fails three tries in a row is failing, with a fixed-text class of its error; its
// first success clears that. The dead-letter destination gets what the sink refused for good,
// marked as such, and the sink moves on.
func TestSinkHealthFlipsAndRefusedEventsAreDeadLettered(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	box, cursors := openInbox(t)
	fill(t, box, 1, 2)

	// The first event is refused for good (422), the next ones meet an outage (502).
	sink := newSwitchableSink(t, http.StatusUnprocessableEntity, http.StatusBadGateway)
	var mu sync.Mutex
	var dead []http.Header
	dls := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		dead = append(dead, r.Header.Clone())
		mu.Unlock()
	}))
	defer dls.Close()

	var flips atomic.Int32
	d := &events.Deliverer{
		Sink: events.Sink{Name: "app", URL: sink.URL, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			DeadLetter: &events.Endpoint{URL: dls.URL}},
		Source: box, Cursors: cursors, Log: logr.Discard(), OnHealth: func() { flips.Add(1) },
	}
	go func() { _ = d.Run(ctx) }()
	failing := func() []any { f, c := d.Health(); return []any{f, c} }
	g.Eventually(failing).WithTimeout(10 * time.Second).Should(Equal([]any{true, "HTTP 502"}))
	g.Expect(flips.Load()).To(BeEquivalentTo(1))
	g.Expect(d.Stats().DeadLettered).To(BeEquivalentTo(1))
	mu.Lock()
	g.Expect(dead).To(HaveLen(1))
	g.Expect(dead[0].Get("ce-deadletterreason")).To(Equal("refused"))
	g.Expect(dead[0].Get("ce-deadletterstatus")).To(Equal("422"))
	g.Expect(dead[0].Get("ce-sequence")).To(Equal("1"))
	mu.Unlock()

	sink.down.Store(false)
	g.Eventually(failing).WithTimeout(10 * time.Second).Should(Equal([]any{false, ""}))
	g.Eventually(func() events.Stats { return d.Stats() }).Should(And(HaveField("Delivered", BeEquivalentTo(1)), HaveField("Cursor", BeEquivalentTo(2))))
	g.Expect(flips.Load()).To(BeEquivalentTo(2))
}

func TestSinksFromEnvMarksUnusableSinksInsteadOfFailing(t *testing.T) {
	env := map[string]string{
		sessionenv.EventRetention:        "72h0m0s",
		sessionenv.EventSinkEnv(0):       `{"name":"good","url":"https://a.example/","keys":2,"timeout":"5s","maxAge":"1h0m0s","deadLetter":{"url":"https://dl.example/"}}`,
		sessionenv.EventSinkKeyEnv(0, 0): "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		sessionenv.EventSinkKeyEnv(0, 1): "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
		sessionenv.EventSinkEnv(1):       `{"name":"badkey","url":"https://b.example/","keys":1}`,
		sessionenv.EventSinkKeyEnv(1, 0): "hunter2",
		sessionenv.EventSinkEnv(2):       `{"name":"badca","url":"https://c.example/","caCerts":"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"}`,
		sessionenv.EventSinkEnv(3):       `{"name":"elsewhere","invalid":"ref.namespace is not the resource's namespace"}`,
		sessionenv.EventSinkEnv(5):       `{"name":"after-a-gap"}`,
	}
	sinks, retention, err := events.SinksFromEnv(func(k string) string { return env[k] })
	g := NewWithT(t)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(retention).To(Equal(72 * time.Hour))
	g.Expect(sinks).To(HaveLen(4), "numbered without gaps")
	g.Expect(sinks[0]).To(And(HaveField("Invalid", ""), HaveField("Keys", HaveLen(2)), HaveField("Timeout", 5*time.Second),
		HaveField("MaxAge", time.Hour), HaveField("DeadLetter.URL", "https://dl.example/")))
	g.Expect(sinks[1].Invalid).To(HavePrefix("SigningKeyInvalid"))
	g.Expect(sinks[1].Invalid).NotTo(ContainSubstring("hunter2"))
	g.Expect(sinks[2].Invalid).To(HavePrefix("CACertsInvalid"))
	g.Expect(sinks[3].Invalid).To(ContainSubstring("namespace"))

	_, _, err = events.SinksFromEnv(func(k string) string {
		if k == sessionenv.EventSinkEnv(0) {
			return "{"
		}
		return ""
	})
	g.Expect(err).To(HaveOccurred())
}

// An unusable sink sends nothing and reports failing with its reason; its events stay.
func TestAnInvalidSinkSendsNothing(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	box, cursors := openInbox(t)
	fill(t, box, 1, 1)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	defer srv.Close()
	d := &events.Deliverer{Sink: events.Sink{Name: "x", URL: srv.URL, Invalid: "CACertsInvalid"}, Source: box, Cursors: cursors, Log: logr.Discard()}
	go func() { _ = d.Run(ctx) }()
	g.Eventually(func() bool { f, _ := d.Health(); return f }).Should(BeTrue())
	_, class := d.Health()
	g.Expect(class).To(Equal("CACertsInvalid"))
	g.Consistently(calls.Load).WithTimeout(1500 * time.Millisecond).Should(BeZero())
	g.Expect(d.Stats().Cursor).To(BeZero())
}
