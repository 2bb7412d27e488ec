package sessionenv

import "strconv"

// Event sinks (spec.events) reach the session as one env var per sink, each a JSON EventSink
// (one var per sink keeps each under the kernel's 128 KiB limit on a single variable even with
// two CA bundles), numbered from 0 without gaps. The signing keys are further env vars that the
// kubelet fills from the Secret (secretKeyRef), so the manager never reads them; a missing
// Secret or key keeps the pod in CreateContainerConfigError, which the controller classifies.
const (
	// EventSinkPrefix + index is a sink's JSON; + "_KEY_" + index its signing keys.
	EventSinkPrefix = "WA_EVENT_SINK_"
	// EventRetention is spec.events.retention as a Go duration ("" = the default).
	EventRetention = "WA_EVENT_RETENTION"
)

// EventSinkEnv names the env var of sink i.
func EventSinkEnv(i int) string { return EventSinkPrefix + strconv.Itoa(i) }

// EventSinkKeyEnv names the env var of sink i's signing key j.
func EventSinkKeyEnv(i, j int) string { return EventSinkEnv(i) + "_KEY_" + strconv.Itoa(j) }

// EventSink is one sink as the controller resolved it.
type EventSink struct {
	Name string `json:"name"`
	// URL is the destination, absolute. Empty when Invalid says why it could not be resolved.
	URL     string `json:"url,omitempty"`
	CACerts string `json:"caCerts,omitempty"`
	// Invalid is a fixed-text reason the controller could not resolve the destination; the
	// session reports it in the EventsDelivering condition and delivers nothing to the sink.
	Invalid string   `json:"invalid,omitempty"`
	Types   []string `json:"types,omitempty"`
	Chats   []string `json:"chats,omitempty"`
	// Keys is how many signing keys there are (EventSinkKeyEnv(i, 0..Keys-1)).
	Keys int `json:"keys,omitempty"`
	// Durations as Go duration strings; "" means the session's default.
	Timeout      string `json:"timeout,omitempty"`
	BackoffDelay string `json:"backoffDelay,omitempty"`
	BackoffMax   string `json:"backoffMax,omitempty"`
	MaxAge       string `json:"maxAge,omitempty"`
	// DeadLetter receives the events the sink did not take.
	DeadLetter *EventDestination `json:"deadLetter,omitempty"`
}

// EventDestination is a resolved dead-letter destination.
type EventDestination struct {
	URL     string `json:"url,omitempty"`
	CACerts string `json:"caCerts,omitempty"`
	Invalid string `json:"invalid,omitempty"`
}

// EventsViewPort is the session's metrics port (the controller's metricsPort), which also
// serves GET /events: `kubectl whatsapp events` reads it through the API server's pod proxy
// (pods/NAME:PORT/proxy/events), which takes a port number, not a name.
const EventsViewPort = 8080
