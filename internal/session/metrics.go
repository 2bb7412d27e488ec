package session

import (
	"github.com/prometheus/client_golang/prometheus"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// metrics are per Runtime, on their own registry, so that several runtimes can live in one
// test process.
type metrics struct {
	registry         *prometheus.Registry
	connected        prometheus.Gauge
	state            *prometheus.GaugeVec
	reconnects       prometheus.Counter
	qrCodes          prometheus.Counter
	leaseTransitions *prometheus.CounterVec
	leaseWrites      prometheus.Counter
}

var allStates = []whatsappv1alpha1.SessionState{
	whatsappv1alpha1.SessionStarting, whatsappv1alpha1.SessionWaitingForLease, whatsappv1alpha1.SessionPairing,
	whatsappv1alpha1.SessionConnecting, whatsappv1alpha1.SessionConnected, whatsappv1alpha1.SessionDisconnected,
	whatsappv1alpha1.SessionReplaced, whatsappv1alpha1.SessionLoggedOut, whatsappv1alpha1.SessionClientOutdated,
	whatsappv1alpha1.SessionTemporaryBan, whatsappv1alpha1.SessionConnectFailure, whatsappv1alpha1.SessionPairingTimeout,
	whatsappv1alpha1.SessionStoreError,
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "whatsapp_session_connected", Help: "1 while the session is logged in to WhatsApp.",
		}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "whatsapp_session_state", Help: "1 for the session's current state, 0 for the others.",
		}, []string{"state"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whatsapp_session_reconnects_total", Help: "Failed automatic reconnect attempts.",
		}),
		qrCodes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whatsapp_session_qr_codes_total", Help: "QR codes published for pairing.",
		}),
		leaseTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whatsapp_session_lease_transitions_total", Help: "Lease acquisitions and losses.",
		}, []string{"transition"}),
		leaseWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whatsapp_session_lease_writes_total", Help: "Lease writes (create, renew, release) sent to the API server.",
		}),
	}
	m.registry.MustRegister(m.connected, m.state, m.reconnects, m.qrCodes, m.leaseTransitions, m.leaseWrites)
	m.setState(whatsappv1alpha1.SessionStarting)
	return m
}

func (m *metrics) setState(s whatsappv1alpha1.SessionState) {
	for _, st := range allStates {
		v := 0.0
		if st == s {
			v = 1
		}
		m.state.WithLabelValues(string(st)).Set(v)
	}
	if s == whatsappv1alpha1.SessionConnected {
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
}
