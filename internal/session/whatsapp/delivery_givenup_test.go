package whatsapp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/types"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
)

// A sink with no dead-letter destination that gives up on messages past their maximum age is
// reported as stranding, with the count of the episode's first report kept while more events
// are given up (so the condition is written once per episode, not per event).
func TestGivenUpMessagesAreReportedOncePerEpisode(t *testing.T) {
	g := NewWithT(t)
	srv, path, _ := startPaired(t, "15550008301")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer hook.Close()
	var views []whatsapp.EventsView
	opener := whatsapp.Opener{
		Store: session.StoreConfig{Type: "sqlite", SQLitePath: path}, Configure: srv.ConfigureClient,
		Sinks: []events.Sink{{Name: "app", URL: hook.URL, Types: []string{inbox.TypeMessage}, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			MaxAge: 300 * time.Millisecond}},
		EventSource:    "/namespaces/default/whatsappconnections/shop",
		HealthInterval: 50 * time.Millisecond,
		ObserveEvents:  func(v whatsapp.EventsView) { views = append(views, v) },
	}
	cli, err := opener.Open(ctx, logr.Discard(), func(error) bool { return true })
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = cli.Close() }()
	var mu sync.Mutex
	var reports []session.SinksHealth
	go func() {
		for ev := range cli.Events() {
			if h, ok := ev.(session.SinksHealth); ok {
				mu.Lock()
				reports = append(reports, h)
				mu.Unlock()
			}
		}
	}()
	last := func() session.SinksHealth {
		mu.Lock()
		defer mu.Unlock()
		if len(reports) == 0 {
			return session.SinksHealth{}
		}
		return reports[len(reports)-1]
	}
	g.Expect(cli.Connect(ctx)).To(Succeed())

	to := types.NewJID("15550008301", types.DefaultUserServer)
	phone := srv.Phone("15550008302")
	g.Eventually(func() error { _, err := phone.SendText(ctx, to, "first"); return err }).WithTimeout(30 * time.Second).Should(Succeed())
	g.Eventually(last).WithTimeout(30 * time.Second).Should(HaveField("Stranded",
		Equal([]session.SinkStranding{{Sink: "app", Reason: events.GiveUpMaxAge, Events: 1}})))

	for range 3 {
		_, err := phone.SendText(ctx, to, "more")
		g.Expect(err).NotTo(HaveOccurred())
	}
	dl := views[len(views)-1].Deliverers[0]
	g.Eventually(dl.Stats).WithTimeout(30 * time.Second).Should(HaveField("GaveUp", BeEquivalentTo(4)))
	g.Expect(dl.Stranding().Events).To(BeEquivalentTo(4), "the deliverer counts every event")
	g.Consistently(last).WithTimeout(300*time.Millisecond).Should(HaveField("Stranded",
		Equal([]session.SinkStranding{{Sink: "app", Reason: events.GiveUpMaxAge, Events: 1}})),
		"the report keeps the episode's first count")
}
