package events_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/waoperator/whatsapp-operator/internal/session/events"
)

// BenchmarkDeliverySignedToALocalSink measures one sink's throughput from a SQLite inbox to a
// local HTTP server that accepts everything: 10 chats, each event signed, the cursor persisted.
// It reports events/s (the cursor's progress; the load on the machine dominates the spread).
//
//	go test ./internal/session/events/ -run '^$' -bench Delivery -benchtime 2000x
func BenchmarkDeliverySignedToALocalSink(b *testing.B) {
	box, cursors := openInbox(b)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	const chats = 10
	fill(b, box, chats, max(b.N/chats, 1))
	total := int64(max(b.N/chats, 1) * chats)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := &events.Deliverer{Sink: events.Sink{Name: "bench", URL: srv.URL, Keys: [][]byte{[]byte("a-signing-key-of-32-bytes-long!!")}},
		Source: box, Cursors: cursors, Log: logr.Discard()}
	b.ResetTimer()
	start := time.Now()
	go func() { _ = d.Run(ctx) }()
	for d.Stats().Cursor < total {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
}
