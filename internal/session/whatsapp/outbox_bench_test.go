package whatsapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
	"github.com/waoperator/whatsapp-operator/internal/session/sendapi"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// allowAll stands in for the API server's reviews: the benchmark measures the send path.
type allowAll struct{}

func (allowAll) Authenticate(context.Context, string, string) (*sendapi.UserInfo, error) {
	return &sendapi.UserInfo{Username: "bench"}, nil
}

func (allowAll) Authorize(context.Context, *sendapi.UserInfo, sendapi.ResourceAttributes) (bool, error) {
	return true, nil
}

// BenchmarkSendAPI measures one connection's send path end to end (HTTP API, durable outbox,
// whatsmeow's encryption and send, fakewa's acknowledgement and the phone's decryption), with
// the rate limit off: p50 and p99 of POST /v1/messages?wait=sent one request at a time (the
// latency to "sent"), then messages per second from a burst of 600 queued messages to 3 chats
// until all are sent, and how fast the API accepts them. Run it with
//
//	go test ./internal/session/whatsapp/ -run '^$' -bench BenchmarkSendAPI -benchtime 1x
func BenchmarkSendAPI(b *testing.B) {
	srv, err := fakewa.Start(fakewa.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	path, _ := pairStore(b, srv, "15550009201")
	slot := &outbox.Slot{}
	opener := whatsapp.Opener{Store: session.StoreConfig{Type: "sqlite", SQLitePath: path}, Configure: srv.ConfigureClient,
		Send: whatsapp.SendOptions{Slot: slot, Rate: rate.Inf, Burst: 1}}
	ctx := context.Background()
	cli, err := opener.Open(ctx, logr.Discard(), func(error) bool { return true })
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	go func() {
		for range cli.Events() {
		}
	}()
	if err := cli.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !cli.IsLoggedIn(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("not logged in")
		}
	}
	h := &sendapi.Handler{Outbox: slot, Log: logr.Discard(),
		State: func() whatsappv1alpha1.SessionState { return whatsappv1alpha1.SessionConnected },
		Auth:  &sendapi.Authorizer{Reviewer: allowAll{}, Namespace: "ns", Name: "bench"}}
	api := httptest.NewServer(h.Routes())
	defer api.Close()
	phones := []*fakewa.Phone{srv.Phone("15550009202"), srv.Phone("15550009203"), srv.Phone("15550009204")}
	post := func(path, body string) map[string]any {
		req, _ := http.NewRequest("POST", api.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode >= 300 {
			b.Fatalf("POST %s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}

	b.ResetTimer()
	const sequential, burst = 200, 600
	lat := make([]time.Duration, 0, sequential)
	for i := range sequential {
		start := time.Now()
		out := post("/v1/messages?wait=sent", fmt.Sprintf(`{"to":"+%s","text":"latency %d"}`, phones[i%3].Number(), i))
		lat = append(lat, time.Since(start))
		if out["state"] != "sent" && out["state"] != "delivered" {
			b.Fatalf("not sent: %v", out)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms-to-sent")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms-to-sent")

	start := time.Now()
	for i := range burst {
		post("/v1/messages", fmt.Sprintf(`{"to":"+%s","text":"burst %d","id":"burst-%d"}`, phones[i%3].Number(), i, i))
	}
	queued := time.Since(start)
	box := slot.Get()
	for {
		n, err := box.Store.Pending(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(burst)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(burst)/queued.Seconds(), "accepted/s")
}
