package sendapi_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"golang.org/x/time/rate"
	_ "modernc.org/sqlite"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
	"github.com/waoperator/whatsapp-operator/internal/session/sendapi"
)

// fakeReviewer stands in for the API server's reviews (the envtest spec uses the real ones):
// tokens map to a user and the audience they were issued for; grants are the verbs a user has
// on whatsappconnections/messages of one connection.
type fakeReviewer struct {
	tokens  map[string]struct{ user, audience string }
	grants  map[string][]string // user → verbs on "shop"
	reviews atomic.Int32
}

func (f *fakeReviewer) Authenticate(_ context.Context, token, audience string) (*sendapi.UserInfo, error) {
	f.reviews.Add(1)
	id, ok := f.tokens[token]
	if !ok || id.audience != audience {
		return nil, nil
	}
	return &sendapi.UserInfo{Username: id.user}, nil
}

func (f *fakeReviewer) Authorize(_ context.Context, u *sendapi.UserInfo, a sendapi.ResourceAttributes) (bool, error) {
	ok := a.Namespace == "ns" && a.Name == "shop" && a.Resource == "whatsappconnections" && a.Subresource == "messages" &&
		a.Group == "whatsapp.waoperator.io" && slices.Contains(f.grants[u.Username], a.Verb)
	return ok, nil
}

type okSender struct{}

func (okSender) Send(context.Context, string, string, string) (time.Time, error) {
	return time.Now(), nil
}

type fixture struct {
	url   string
	state atomic.Value
	box   *outbox.Outbox
	slot  *outbox.Slot
	rev   *fakeReviewer
}

func newFixture(t *testing.T, runWorker bool) *fixture {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "d.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	store, err := outbox.Open(context.Background(), db, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{box: outbox.New(store, okSender{}), slot: &outbox.Slot{}}
	f.slot.Set(f.box)
	f.state.Store(whatsappv1alpha1.SessionConnected)
	aud := sendapi.Audience("ns", "shop")
	f.rev = &fakeReviewer{
		tokens: map[string]struct{ user, audience string }{
			"sender-token":  {"system:serviceaccount:ns:app", aud},
			"reader-token":  {"system:serviceaccount:ns:dashboard", aud},
			"other-token":   {"system:serviceaccount:ns:other", aud},
			"foreign-token": {"system:serviceaccount:ns:app", sendapi.Audience("ns", "another")},
		},
		grants: map[string][]string{"system:serviceaccount:ns:app": {"create", "get"}, "system:serviceaccount:ns:dashboard": {"get"}},
	}
	h := &sendapi.Handler{Outbox: f.slot, Log: logr.Discard(), Wait: 5 * time.Second,
		State: func() whatsappv1alpha1.SessionState { return f.state.Load().(whatsappv1alpha1.SessionState) },
		Auth:  &sendapi.Authorizer{Reviewer: f.rev, Namespace: "ns", Name: "shop"}}
	srv := httptest.NewServer(h.Routes())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	if runWorker {
		f.box.Worker.Rate, f.box.Worker.Log = rate.Inf, logr.Discard()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); f.box.Worker.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return f
}

type reply struct {
	status int
	body   map[string]any
}

func (f *fixture) do(t *testing.T, method, path, token, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	out := reply{status: resp.StatusCode}
	if err := json.Unmarshal(raw, &out.body); err != nil {
		t.Fatalf("%s %s: not JSON: %q", method, path, raw)
	}
	return out
}

func TestSendQueuesOnceAndReadsBack(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, false)
	r := f.do(t, "POST", "/v1/messages", "sender-token", `{"to":"+15551234567","text":"hi","id":"order-7"}`)
	g.Expect(r.status).To(Equal(http.StatusAccepted))
	g.Expect(r.body).To(HaveKeyWithValue("id", "order-7"))
	g.Expect(r.body).To(HaveKeyWithValue("state", "queued"))
	g.Expect(r.body).To(HaveKeyWithValue("to", "15551234567@s.whatsapp.net"))
	g.Expect(r.body).NotTo(HaveKey("text"), "content is not echoed")

	again := f.do(t, "POST", "/v1/messages", "sender-token", `{"to":"15551234567@s.whatsapp.net","text":"hi","id":"order-7"}`)
	g.Expect(again.status).To(Equal(http.StatusOK), "the same id is the same message")
	g.Expect(again.body["whatsappId"]).To(Equal(r.body["whatsappId"]))
	n, err := f.box.Store.Pending(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(1))

	other := f.do(t, "POST", "/v1/messages", "sender-token", `{"to":"+15551234567","text":"different","id":"order-7"}`)
	g.Expect(other.status).To(Equal(http.StatusConflict))
	g.Expect(other.body).To(HaveKeyWithValue("field", "id"))

	got := f.do(t, "GET", "/v1/messages/order-7", "reader-token", "")
	g.Expect(got.status).To(Equal(http.StatusOK))
	g.Expect(got.body).To(HaveKeyWithValue("state", "queued"))

	generated := f.do(t, "POST", "/v1/messages", "sender-token", `{"to":"+15551234567","text":"no id"}`)
	g.Expect(generated.status).To(Equal(http.StatusAccepted))
	g.Expect(generated.body["id"]).NotTo(BeEmpty(), "the API makes an id up")
}

func TestRefusedCallersLearnNothingAboutMessages(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, false)
	g.Expect(f.do(t, "POST", "/v1/messages", "sender-token", `{"to":"+15551234567","text":"hi","id":"exists"}`).status).
		To(Equal(http.StatusAccepted))
	for _, c := range []struct {
		method, path, token, body string
		status                    int
	}{
		{"POST", "/v1/messages", "", `{"to":"+15551234567","text":"hi"}`, http.StatusUnauthorized},
		{"POST", "/v1/messages", "not-a-token", `{"to":"+15551234567","text":"hi"}`, http.StatusUnauthorized},
		{"POST", "/v1/messages", "foreign-token", `{"to":"+15551234567","text":"hi"}`, http.StatusUnauthorized},
		{"POST", "/v1/messages", "other-token", `{"to":"+15551234567","text":"hi"}`, http.StatusForbidden},
		{"POST", "/v1/messages", "reader-token", `{"to":"+15551234567","text":"hi"}`, http.StatusForbidden},
		{"POST", "/v1/messages", "other-token", `not even json`, http.StatusForbidden},
		{"GET", "/v1/messages/exists", "", "", http.StatusUnauthorized},
		{"GET", "/v1/messages/exists", "other-token", "", http.StatusForbidden},
		{"GET", "/v1/messages/missing", "other-token", "", http.StatusForbidden},
		{"GET", "/v1/messages/exists", "foreign-token", "", http.StatusUnauthorized},
		{"GET", "/v1/messages/missing", "foreign-token", "", http.StatusUnauthorized},
		{"GET", "/v1/messages/missing", "reader-token", "", http.StatusNotFound},
	} {
		r := f.do(t, c.method, c.path, c.token, c.body)
		g.Expect(r.status).To(Equal(c.status), "%s %s with %q", c.method, c.path, c.token)
		g.Expect(r.body).To(HaveKey("error"))
	}
	n, err := f.box.Store.Pending(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(1), "nothing refused was queued")
}

func TestBadRequestsAreClearAndQueueNothing(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, false)
	long := strings.Repeat("é", sendapi.MaxTextLength+1)
	for _, c := range []struct {
		body, field, contains string
		status                int
	}{
		{`{"to":"+15551234567","text":"hi","cc":"x"}`, "", "unknown field", http.StatusBadRequest},
		{`{"to":"+15551234567","text":"hi"} {"to":"+1"}`, "", "nothing after it", http.StatusBadRequest},
		{`[1,2]`, "", "JSON object", http.StatusBadRequest},
		{`{"to":"5551234567","text":"hi"}`, "to", "E.164", http.StatusBadRequest},
		{`{"to":"+0123","text":"hi"}`, "to", "E.164", http.StatusBadRequest},
		{`{"to":"123@g.us","text":"hi"}`, "to", "E.164", http.StatusBadRequest},
		{`{"to":"15551234567:3@s.whatsapp.net","text":"hi"}`, "to", "E.164", http.StatusBadRequest},
		{`{"text":"hi"}`, "to", "required", http.StatusBadRequest},
		{`{"to":"+15551234567","text":"  "}`, "text", "blank", http.StatusBadRequest},
		{`{"to":"+15551234567","text":"` + long + `"}`, "text", "65536", http.StatusBadRequest},
		{`{"to":"+15551234567","text":"hi","id":"has space"}`, "id", "letters", http.StatusBadRequest},
		{`{"to":"+15551234567","text":"` + strings.Repeat("x", sendapi.MaxBodyBytes) + `"}`, "", "512 KiB", http.StatusBadRequest},
	} {
		r := f.do(t, "POST", "/v1/messages", "sender-token", c.body)
		g.Expect(r.status).To(Equal(c.status), c.contains)
		g.Expect(r.body["error"]).To(ContainSubstring(c.contains))
		if c.field != "" {
			g.Expect(r.body).To(HaveKeyWithValue("field", c.field))
		}
	}
	ok := f.do(t, "POST", "/v1/messages", "sender-token", `{"to":"+15551234567","text":"`+strings.Repeat("é", sendapi.MaxTextLength)+`"}`)
	g.Expect(ok.status).To(Equal(http.StatusAccepted), "exactly WhatsApp's limit is fine")
	g.Expect(f.do(t, "POST", "/v1/messages", "sender-token", `{"to":"123456789@lid","text":"hi"}`).status).To(Equal(http.StatusAccepted))
	n, err := f.box.Store.Pending(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(2))
}

func TestNotConnectedIsAConflictWithThePhaseAndAFullOutboxIsTooManyRequests(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, false)
	for _, s := range []whatsappv1alpha1.SessionState{whatsappv1alpha1.SessionPairing, whatsappv1alpha1.SessionLoggedOut, whatsappv1alpha1.SessionReplaced} {
		f.state.Store(s)
		r := f.do(t, "POST", "/v1/messages", "sender-token", `{"to":"+15551234567","text":"hi"}`)
		g.Expect(r.status).To(Equal(http.StatusConflict))
		g.Expect(r.body).To(HaveKeyWithValue("phase", string(s)))
	}
	f.state.Store(whatsappv1alpha1.SessionDisconnected)
	g.Expect(f.do(t, "POST", "/v1/messages", "sender-token", `{"to":"+15551234567","text":"waits"}`).status).
		To(Equal(http.StatusAccepted), "a paired connection that is reconnecting queues")
	f.slot.Set(nil)
	r := f.do(t, "POST", "/v1/messages", "sender-token", `{"to":"+15551234567","text":"hi"}`)
	g.Expect(r.status).To(Equal(http.StatusConflict), "no outbox open here (not the Lease holder)")

	f.slot.Set(f.box)
	f.state.Store(whatsappv1alpha1.SessionConnected)
	f.box.Store.Limit = 1
	r = f.do(t, "POST", "/v1/messages", "sender-token", `{"to":"+15551234567","text":"one too many"}`)
	g.Expect(r.status).To(Equal(http.StatusTooManyRequests))
}

func TestWaitSentAnswersOnceWhatsAppAcknowledged(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, true)
	r := f.do(t, "POST", "/v1/messages?wait=sent", "sender-token", `{"to":"+15551234567","text":"hi","id":"w"}`)
	g.Expect(r.status).To(Equal(http.StatusOK))
	g.Expect(r.body).To(HaveKeyWithValue("state", "sent"))
	g.Expect(r.body).To(HaveKey("sentAt"))
	g.Expect(f.do(t, "POST", "/v1/messages?wait=later", "sender-token", `{"to":"+15551234567","text":"hi"}`).status).
		To(Equal(http.StatusBadRequest))
}

func TestDecisionsAreCachedBriefly(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, false)
	for range 5 {
		g.Expect(f.do(t, "GET", "/v1/messages/x", "reader-token", "").status).To(Equal(http.StatusNotFound))
	}
	g.Expect(f.rev.reviews.Load()).To(Equal(int32(1)), "one review for a burst")
	g.Expect(f.do(t, "POST", "/v1/messages", "reader-token", `{"to":"+15551234567","text":"hi"}`).status).To(Equal(http.StatusForbidden))
	g.Expect(f.rev.reviews.Load()).To(Equal(int32(2)), "per verb")
}

func TestListAnswersTheLatestMessagesToReadersOnly(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, false)
	for i := range 3 {
		body := fmt.Sprintf(`{"to":"+15551234567","text":"m%d","id":"list-%d"}`, i, i)
		g.Expect(f.do(t, "POST", "/v1/messages", "sender-token", body).status).To(Equal(http.StatusAccepted))
	}
	r := f.do(t, "GET", "/v1/messages?limit=2", "reader-token", "")
	g.Expect(r.status).To(Equal(http.StatusOK))
	msgs, _ := r.body["messages"].([]any)
	g.Expect(msgs).To(HaveLen(2))
	g.Expect(msgs[0]).To(HaveKeyWithValue("id", "list-2"), "newest first")
	g.Expect(msgs[1]).To(HaveKeyWithValue("id", "list-1"))
	g.Expect(msgs[0]).NotTo(HaveKey("text"), "content is not listed")
	g.Expect(f.do(t, "GET", "/v1/messages", "reader-token", "").body["messages"]).To(HaveLen(3))
	g.Expect(f.do(t, "GET", "/v1/messages?limit=501", "reader-token", "").status).To(Equal(http.StatusBadRequest))
	g.Expect(f.do(t, "GET", "/v1/messages", "other-token", "").status).To(Equal(http.StatusForbidden))
	g.Expect(f.do(t, "GET", "/v1/messages", "", "").status).To(Equal(http.StatusUnauthorized))
}
