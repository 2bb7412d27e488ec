package main

import (
	"io"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
)

// withEvents gives the opener the sinks of spec.events from the pod's environment (the
// controller's sessionenv.EventSink contract, signing keys filled by the kubelet) and the
// CloudEvents source naming the resource, and serves the sinks' metrics and the /events view
// (kubectl whatsapp events) of the client that is open. An unusable sink is not an error here:
// the session reports it in the EventsDelivering condition.
func withEvents(o whatsapp.Opener, cfg *session.Config) (whatsapp.Opener, error) {
	sinks, retention, err := events.SinksFromEnv(os.Getenv)
	if err != nil {
		return o, err
	}
	o.Sinks, o.InboxRetention = sinks, retention
	o.EventSource = "/namespaces/" + cfg.Namespace + "/whatsappconnections/" + cfg.ConnectionName

	var open atomic.Pointer[whatsapp.EventsView]
	o.ObserveEvents = func(v whatsapp.EventsView) { open.Store(&v) }
	cfg.MoreMetrics = func(w io.Writer) {
		if v := open.Load(); v != nil && len(v.Deliverers) > 0 {
			c := events.Collector{Deliverers: func() []*events.Deliverer { return v.Deliverers }, Inbox: v.Inbox}
			_ = c.WriteText(w)
		}
	}
	cfg.MetricsHandlers = map[string]http.Handler{"/events": events.ViewHandler(func() ([]*events.Deliverer, events.RecentSource) {
		if v := open.Load(); v != nil {
			return v.Deliverers, v.Inbox
		}
		return nil, nil
	})}
	return o, nil
}
