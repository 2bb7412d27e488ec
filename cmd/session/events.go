package main

import (
	"os"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/events"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
)

// withEvents gives the opener the sinks of spec.events from the pod's environment (the
// controller's sessionenv.EventSink contract, signing keys filled by the kubelet) and the
// CloudEvents source naming the resource. An unusable sink is not an error here: the session
// reports it in the EventsDelivering condition.
func withEvents(o whatsapp.Opener, cfg session.Config) (whatsapp.Opener, error) {
	sinks, retention, err := events.SinksFromEnv(os.Getenv)
	if err != nil {
		return o, err
	}
	o.Sinks, o.InboxRetention = sinks, retention
	o.EventSource = "/namespaces/" + cfg.Namespace + "/whatsappconnections/" + cfg.ConnectionName
	return o, nil
}
