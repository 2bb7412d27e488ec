package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

const (
	eventsName   = "inbox"
	eventsPhone  = "15550009100"
	eventsSecret = "inbox-webhook"
)

// webhookSink is the user's service: it checks each request's Standard Webhooks signature with
// the key it shares with the Secret (its own implementation of the scheme), and keeps the
// WhatsApp message ids it accepted, per chat, in arrival order.
type webhookSink struct {
	key    []byte
	down   atomic.Bool // answer 503 to everything
	refuse atomic.Bool // answer 422 (final) to everything
	flaky  atomic.Bool // answer 503 to about a third of the requests

	mu      sync.Mutex
	byChat  map[string][]string
	badSigs int
	refused int
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if s.refuse.Load() {
		w.WriteHeader(http.StatusUnprocessableEntity)
		return
	}
	if s.down.Load() || s.flaky.Load() && mathrand.IntN(3) == 0 {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.verify(r.Header, body) {
		s.badSigs++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var msg struct{ ID, Chat string }
	if r.Header.Get("ce-specversion") != "1.0" || r.Header.Get("ce-type") != "io.waoperator.whatsapp.message.received" ||
		r.Header.Get("ce-source") != "/namespaces/default/whatsappconnections/"+eventsName ||
		json.Unmarshal(body, &msg) != nil || msg.Chat != r.Header.Get("ce-subject") {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.byChat[msg.Chat] = append(s.byChat[msg.Chat], msg.ID)
	w.WriteHeader(http.StatusNoContent)
}

func (s *webhookSink) verify(h http.Header, body []byte) bool {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

// received is, per chat, the ids accepted in order of their first arrival: delivery is at
// least once, and an event in flight when the session died comes again with the same id.
func (s *webhookSink) received() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for k, v := range s.byChat {
		seen := map[string]bool{}
		for _, id := range v {
			if !seen[id] {
				seen[id] = true
				out[k] = append(out[k], id)
			}
		}
	}
	return out
}

func (s *webhookSink) refusedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// duplicates counts the arrivals of an id already accepted.
func (s *webhookSink) duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.byChat {
		seen := map[string]bool{}
		for _, id := range v {
			if seen[id] {
				n++
			}
			seen[id] = true
		}
	}
	return n
}

// sendText makes a fake phone send a text to the account, through the control API.
func sendText(from, to, text string) (string, error) {
	data, _ := json.Marshal(map[string]string{"to": to + "@s.whatsapp.net", "text": text})
	resp, err := http.Post(st.controlURL+"/phones/"+from+"/messages", "application/json", bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("send: %s: %s", resp.Status, body)
	}
	var sent struct{ ID string }
	return sent.ID, json.Unmarshal(body, &sent)
}

func eventsCondition() (map[string]string, error) {
	out, err := kubectl("get", "wac", eventsName, "-o",
		`jsonpath={range .status.conditions[?(@.type=="EventsDelivering")]}{.status}|{.reason}|{.message}{end}`)
	if err != nil {
		return nil, err
	}
	parts := strings.SplitN(out, "|", 3)
	if len(parts) != 3 {
		return map[string]string{}, nil
	}
	return map[string]string{"status": parts[0], "reason": parts[1], "message": parts[2]}, nil
}

var _ = Describe("events to a webhook sink", Ordered, func() {
	var sink *webhookSink
	var hook *httptest.Server
	wacRef := "wac/" + eventsName

	BeforeAll(func() {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		sink = &webhookSink{key: key, byChat: map[string][]string{}}
		hook = httptest.NewServer(sink)
	})

	AfterAll(func() {
		mustKubectl("delete", "wac", eventsName, "--ignore-not-found", "--wait=false")
		Eventually(kubectl).WithArguments("get", "wac", eventsName, "--ignore-not-found", "-o", "name").
			WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(BeEmpty())
		mustKubectl("delete", "secret", eventsSecret, "--ignore-not-found")
		hook.Close()
	})

	It("refuses a bad sink at admission with its field path", func() {
		_, err := kubectlIn(`apiVersion: whatsapp.waoperator.io/v1alpha1
kind: WhatsAppConnection
metadata: {name: bad-sink}
spec:
  events:
    sinks:
    - name: app
      uri: ftp://hooks.example.com/in
    - name: svc
      ref: {kind: Deployment, name: app}
`, "apply", "-f", "-")
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(And(ContainSubstring("spec.events.sinks[0].uri"), ContainSubstring("spec.events.sinks[1].ref.kind"),
			ContainSubstring("kind must be Service")))
	})

	It("waits for its missing signing Secret, then delivers every message, signed, in order per chat", func() {
		_, err := kubectlIn(fmt.Sprintf(`apiVersion: whatsapp.waoperator.io/v1alpha1
kind: WhatsAppConnection
metadata: {name: %s}
spec:
  events:
    sinks:
    - name: app
      uri: %s/whatsapp
      signingSecretRef: {name: %s}
      filter: {types: [message.received]}
      delivery: {backoffDelay: 100ms, backoffMax: 1s}
`, eventsName, hook.URL, eventsSecret), "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			out, err := kubectl("describe", "wac", eventsName)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(And(ContainSubstring(whatsappv1alpha1.ReasonSecretNotFound), ContainSubstring("spec.events.sinks[app].signingSecretRef")))
		}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		mustKubectl("create", "secret", "generic", eventsSecret, "--from-literal=secret=whsec_"+base64.StdEncoding.EncodeToString(sink.key))

		Eventually(scanQR(eventsName, "+"+eventsPhone)).WithTimeout(60 * time.Second).WithPolling(time.Second).ShouldNot(BeEmpty())
		Eventually(jsonpath(wacRef, "{.status.phase}")).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).
			Should(Equal(string(whatsappv1alpha1.PhaseConnected)))
		Eventually(eventsCondition).WithTimeout(30*time.Second).WithPolling(500*time.Millisecond).
			Should(HaveKeyWithValue("status", "True"), "EventsDelivering once the session runs")

		want := sendAll(0, 5)
		Eventually(sink.received).WithTimeout(60*time.Second).WithPolling(500*time.Millisecond).Should(Equal(want),
			"every message, in order per chat")
		Expect(sink.duplicates()).To(BeZero(), "once")
		Expect(sink.badSigs).To(BeZero())
	})

	It("says which sink fails while it fails, and catches up in order when it recovers", func() {
		sink.down.Store(true)
		want := sendAll(5, 8)
		Eventually(eventsCondition).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(And(
			HaveKeyWithValue("status", "False"), HaveKeyWithValue("reason", whatsappv1alpha1.ReasonSinkFailing),
			HaveKeyWithValue("message", ContainSubstring("sink app is failing: HTTP 503"))))
		cond, _ := eventsCondition()
		Expect(cond["message"]).NotTo(ContainSubstring("message "), "no message content in status")

		sink.down.Store(false)
		Eventually(sink.received).WithTimeout(60*time.Second).WithPolling(500*time.Millisecond).Should(Equal(want),
			"nothing lost, nothing reordered")
		Eventually(eventsCondition).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).
			Should(HaveKeyWithValue("status", "True"))
		Expect(sink.badSigs).To(BeZero())
	})

	It("loses nothing and keeps each chat's order when the session is killed while a flaky sink is behind", func() {
		defer sink.flaky.Store(false)
		before := sink.duplicates()
		uid, err := jsonpath("pod/"+eventsName+"-session", "{.metadata.uid}")()
		Expect(err).NotTo(HaveOccurred())
		// The sink is down while the phones write, so the session has a backlog when it dies.
		sink.down.Store(true)
		refused := sink.refusedCount()
		sendAll(11, 21)
		Eventually(sink.refusedCount).WithTimeout(30 * time.Second).Should(BeNumerically(">", refused+2))
		procs := processesWithEnv("WA_POD_UID=" + uid)
		Expect(procs).To(HaveLen(1), "one session process for pod %s", uid)
		Expect(syscall.Kill(procs[0].PID, syscall.SIGKILL)).To(Succeed())
		want := sendAll(21, 26) // while no session runs: WhatsApp queues them; want has every id so far
		sink.flaky.Store(true)
		sink.down.Store(false)
		Eventually(sink.received).WithTimeout(3*time.Minute).WithPolling(time.Second).Should(Equal(want),
			"every message, in order per chat, across the kill")
		newUID, err := jsonpath("pod/"+eventsName+"-session", "{.metadata.uid}")()
		Expect(err).NotTo(HaveOccurred())
		Expect(newUID).NotTo(Equal(uid), "a new session pod delivered the rest")
		AddReportEntry("events redelivered after the kill (same id, at least once)", sink.duplicates()-before)
		Expect(sink.badSigs).To(BeZero())
	})

	It("delivers what the phones sent while the connection was suspended, after it resumes", func() {
		mustKubectl("patch", "wac", eventsName, "--type=merge", "-p", `{"spec":{"suspend":true}}`)
		Eventually(jsonpath(wacRef, "{.status.phase}")).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).
			Should(Equal(string(whatsappv1alpha1.PhaseSuspended)))
		want := sendAll(8, 11) // queued by WhatsApp while no device is online
		Consistently(sink.received).WithTimeout(2 * time.Second).WithPolling(500 * time.Millisecond).ShouldNot(Equal(want))

		mustKubectl("patch", "wac", eventsName, "--type=merge", "-p", `{"spec":{"suspend":false}}`)
		Eventually(sink.received).WithTimeout(90*time.Second).WithPolling(500*time.Millisecond).Should(Equal(want),
			"the offline queue arrives after resume, in order, once")
		Expect(sink.badSigs).To(BeZero())
	})

	It("records one Warning when the sink refuses events for good and there is no dead-letter sink", func() {
		sink.refuse.Store(true)
		sendAll(26, 27)
		for chat := range sentIDs { // given up by design: they stay in the inbox, not at the sink
			sentIDs[chat] = sentIDs[chat][:len(sentIDs[chat])-1]
		}
		Eventually(eventsCondition).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(And(
			HaveKeyWithValue("status", "False"), HaveKeyWithValue("reason", whatsappv1alpha1.ReasonEventsGivenUp),
			HaveKeyWithValue("message", And(ContainSubstring("sink app gave up on"), ContainSubstring("refused")))))
		warnings := func() (string, error) {
			return kubectl("get", "events", "--field-selector", "type=Warning,reason="+whatsappv1alpha1.ReasonEventsGivenUp,
				"-o", "jsonpath={range .items[*]}{.involvedObject.name}: {.message} (series {.series.count})|{end}")
		}
		Eventually(warnings).WithTimeout(30*time.Second).WithPolling(500*time.Millisecond).Should(
			And(ContainSubstring(eventsName+": sink app gave up on"), Not(ContainSubstring("message 26"))),
			"a Warning naming the sink, without content")

		sink.refuse.Store(false)
		want := sendAll(27, 28)
		Eventually(sink.received).WithTimeout(60*time.Second).WithPolling(500*time.Millisecond).Should(Equal(want),
			"the sink moved on: later messages arrive")
		Eventually(eventsCondition).WithTimeout(60*time.Second).WithPolling(500*time.Millisecond).
			Should(HaveKeyWithValue("status", "True"), "a delivery ends the episode")
		out, err := warnings()
		Expect(err).NotTo(HaveOccurred())
		// The recorder folds a repeated Warning into a series of the first: none either.
		Expect(strings.Count(out, "|")).To(Equal(1), "one Warning for the episode, not one per event: %s", out)
		Expect(out).To(HaveSuffix("(series )|"), "not repeated: %s", out)
	})

	It("drops the EventsDelivering condition when the sinks are removed", func() {
		mustKubectl("patch", "wac", eventsName, "--type=json", "-p", `[{"op":"remove","path":"/spec/events"}]`)
		Eventually(eventsCondition).WithTimeout(90 * time.Second).WithPolling(time.Second).Should(BeEmpty())
		Eventually(jsonpath(wacRef, "{.status.phase}")).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).
			Should(Equal(string(whatsappv1alpha1.PhaseConnected)))
	})
})

// eventsPhones are the two phones that write to the account; each is its own chat.
var eventsPhones = []string{"15550009101", "15550009102"}

// sentIDs is every message id sent so far, per chat.
var sentIDs = map[string][]string{}

// sendAll makes each phone send messages from..to-1, interleaved, and returns every id sent so
// far per chat, in sending order.
func sendAll(from, to int) map[string][]string {
	for i := from; i < to; i++ {
		for _, p := range eventsPhones {
			var id string
			Eventually(func() (err error) { // the first send waits for the device's pre-keys
				id, err = sendText(p, eventsPhone, fmt.Sprintf("message %d", i))
				return err
			}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
			chat := p + "@s.whatsapp.net"
			sentIDs[chat] = append(sentIDs[chat], id)
		}
	}
	out := map[string][]string{}
	for k, v := range sentIDs {
		out[k] = append([]string(nil), v...)
	}
	return out
}
