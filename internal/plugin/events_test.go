package plugin_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	_ "modernc.org/sqlite"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/plugin"
	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/session/inbox"
)

// The session's /events handler over a real inbox and deliverer, reached as the pod proxy
// would reach it: the command finds the pod in status, and shows sinks and events without
// content and with chats masked.
var _ = Describe("events", func() {
	It("shows each sink's state and the latest events, no content, chats masked", func() {
		ns := newNamespace()
		shop := newConnection(ns, "shop", whatsappv1alpha1.PairingSpec{})
		st := whatsappv1alpha1.WhatsAppConnectionStatus{Phase: whatsappv1alpha1.PhaseConnected, SessionPod: "shop-session"}
		applyStatus(shop, controllerManager, map[string]any{"phase": string(st.Phase), "sessionPod": st.SessionPod})

		db, err := sql.Open("sqlite", "file:"+filepath.Join(GinkgoT().TempDir(), "d.db")+"?_pragma=busy_timeout(5000)")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(db.Close)
		box, err := inbox.Open(ctx, db, "sqlite")
		Expect(err).NotTo(HaveOccurred())
		cursors, err := events.OpenCursors(ctx, db)
		Expect(err).NotTo(HaveOccurred())
		for i, chat := range []string{"14155550111@s.whatsapp.net", "14155550122@s.whatsapp.net"} {
			_, err := box.Put(ctx, inbox.Event{ID: fmt.Sprintf("ev%d", i), Type: inbox.TypeMessage, Chat: chat, Sender: chat,
				MessageID: "m", Time: time.Now(), Data: []byte(`{"text":"secret words"}`)})
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(cursors.Set(ctx, "app", 1)).To(Succeed())
		// A sink that never answers well: it stays at cursor 1 and fails.
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
		DeferCleanup(down.Close)
		d := &events.Deliverer{Sink: events.Sink{Name: "app", URL: down.URL, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond},
			Source: box, Cursors: cursors, Log: logr.Discard()}
		runCtx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		go func() { _ = d.Run(runCtx) }()
		Eventually(func() bool { f, _ := d.Health(); return f }).Should(BeTrue())

		view := events.ViewHandler(func() ([]*events.Deliverer, events.RecentSource) { return []*events.Deliverer{d}, box })
		var asked string
		proxy := func(_ context.Context, namespace, pod, port, path string, params map[string]string) ([]byte, error) {
			asked = fmt.Sprintf("%s/%s:%s/%s?limit=%s", namespace, pod, port, path, params["limit"])
			rec := httptest.NewRecorder()
			view.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/"+path+"?limit="+url.QueryEscape(params["limit"]), nil))
			return rec.Body.Bytes(), nil
		}
		var out bytes.Buffer
		Expect(plugin.Events(ctx, shop, proxy, &out, 10, time.Now())).To(Succeed())
		Expect(asked).To(Equal(ns + "/shop-session:8080/events?limit=10"))
		Expect(out.String()).To(MatchRegexp(`(?m)^SINK +STATE +DELIVERED +RETRIES +GIVEN-UP +DEAD-LETTERED +CURSOR\n` +
			`app +failing: HTTP 502 +0 +\d+ +0 +0 +1$`))
		Expect(out.String()).To(MatchRegexp(`(?m)^SEQ +TYPE +CHAT +AGE +PENDING +ID\n` +
			`2 +message.received +…0122@s.whatsapp.net +\S+ +app +ev1\n` +
			`1 +message.received +…0111@s.whatsapp.net +\S+ +- +ev0\n\z`))
		Expect(out.String()).NotTo(Or(ContainSubstring("secret words"), ContainSubstring("14155550111")))
	})

	It("says when there is no session pod to ask", func() {
		t := newConnection(newNamespace(), "idle", whatsappv1alpha1.PairingSpec{})
		err := plugin.Events(ctx, t, nil, &bytes.Buffer{}, 10, time.Now())
		Expect(err).To(MatchError(ContainSubstring("has no session pod")))
	})
})
