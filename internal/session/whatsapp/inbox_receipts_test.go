package whatsapp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
)

// A login is a connection.changed event to the sinks that want it, with the state and no
// chat; a sink filtered to messages does not get it.
func TestALoginIsAConnectionChangedEvent(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	srv, path, _ := startPaired(t, "15550008301")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var mu sync.Mutex
	got := map[string][]string{} // path → ce-type + state
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b struct{ State string }
		_ = json.Unmarshal(body, &b)
		mu.Lock()
		got[r.URL.Path] = append(got[r.URL.Path], r.Header.Get("ce-type")+" "+b.State+" subject="+r.Header.Get("ce-subject"))
		mu.Unlock()
	}))
	defer hook.Close()
	opener := whatsapp.Opener{
		Store: session.StoreConfig{Type: "sqlite", SQLitePath: path}, Configure: srv.ConfigureClient,
		Sinks: []events.Sink{{Name: "all", URL: hook.URL + "/all"}, {Name: "messages", URL: hook.URL + "/messages", Types: []string{"message.received"}}},
	}
	cli := openConnected(ctx, g, opener)
	defer func() { _ = cli.Close() }()
	g.Eventually(func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got["/all"]...)
	}).WithTimeout(30 * time.Second).Should(ContainElement("io.waoperator.whatsapp.connection.changed Connected subject="))
	mu.Lock()
	defer mu.Unlock()
	g.Expect(got["/messages"]).To(BeEmpty())
}
