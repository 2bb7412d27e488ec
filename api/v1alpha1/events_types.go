package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// EventsSpec says where the connection's incoming events go. Every event is first written to
// the inbox in the device store, then delivered to each sink as a CloudEvent (HTTP binary
// mode), signed with the Standard Webhooks scheme when the sink names a signing Secret. Events
// of one chat reach a sink in order; chats proceed in parallel.
type EventsSpec struct {
	// sinks receive the events. Changing them replaces the session pod (a failover of a few
	// seconds; nothing is lost: each sink keeps its cursor in the device store).
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	// +optional
	Sinks []EventSink `json:"sinks,omitempty"`

	// retention is how long an event stays in the inbox once every sink has it (delivered,
	// filtered out, dead-lettered or given up on). Default 168h (7 days); 1m to 8760h.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('8760h')",message="retention must be between 1m and 8760h"
	// +optional
	Retention *metav1.Duration `json:"retention,omitempty"`
}

// EventType is the part of a CloudEvents type after io.waoperator.whatsapp.
// +kubebuilder:validation:Enum=message.received;message.undecryptable;message.receipt;connection.changed
type EventType string

const (
	EventMessageReceived      EventType = "message.received"
	EventMessageUndecryptable EventType = "message.undecryptable"
	EventMessageReceipt       EventType = "message.receipt"
	EventConnectionChanged    EventType = "connection.changed"
)

// EventSink is one destination of the connection's events.
type EventSink struct {
	// name identifies the sink: its delivery cursor, its metrics and the EventsDelivering
	// condition use it. Renaming a sink starts it from the oldest event in the inbox.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Destination is where the events are POSTed (Knative's Destination shape).
	Destination `json:",inline"`

	// filter selects the events this sink receives; none means all.
	// +optional
	Filter *EventFilter `json:"filter,omitempty"`

	// signingSecretRef names a Secret in this namespace whose keys sign every request
	// (webhook-id, webhook-timestamp, webhook-signature). Each key holds a Standard Webhooks
	// secret: whsec_ followed by base64 of 24 to 64 random bytes. Naming two keys signs with
	// both, so that a receiver can move from one to the other. Only a user who may get the
	// Secret may name it here.
	// +optional
	SigningSecretRef *SigningSecretRef `json:"signingSecretRef,omitempty"`

	// delivery bounds the tries for each event.
	// +optional
	Delivery *EventDelivery `json:"delivery,omitempty"`
}

// Destination is an addressable endpoint, as Knative's duckv1.Destination: either uri, or ref
// to a Service in this namespace (plus an optional path).
// +kubebuilder:validation:XValidation:rule="has(self.uri) != has(self.ref)",message="exactly one of uri or ref must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.path) || has(self.ref)",message="path is only allowed with ref (put the path in uri otherwise)",fieldPath=".path"
// +kubebuilder:validation:XValidation:rule="!has(self.CACerts) || (has(self.uri) ? self.uri.startsWith('https://') : (has(self.ref) && has(self.ref.scheme) && self.ref.scheme == 'https'))",message="CACerts is only used for https destinations",fieldPath=".CACerts"
type Destination struct {
	// uri is an absolute http or https URL.
	// +kubebuilder:validation:MinLength=8
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^/?#@\\\\s]+([/?#][^\\\\s]*)?$') && isURL(self)",message="uri must be an absolute http:// or https:// URL with a host and no user info"
	// +optional
	URI string `json:"uri,omitempty"`

	// ref is a Service in this namespace; events go to
	// scheme://NAME.NAMESPACE.svc[:port]/path. Service is the only addressable kind the
	// operator resolves (it does this without reading the Service).
	// +optional
	Ref *DestinationRef `json:"ref,omitempty"`

	// path is appended to the Service's address (ref only); it starts with /.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[^\s?#]*$`
	// +optional
	Path string `json:"path,omitempty"`

	// CACerts is PEM of the certificate authorities to trust for an https destination, in place
	// of the session image's system roots.
	// +kubebuilder:validation:MaxLength=16384
	// +kubebuilder:validation:XValidation:rule="self.contains('-----BEGIN CERTIFICATE-----')",message="CACerts must hold PEM certificates"
	// +optional
	CACerts *string `json:"CACerts,omitempty"`
}

// DestinationRef is a Service (core v1) in the resource's namespace.
type DestinationRef struct {
	// apiVersion of the referent; only v1.
	// +kubebuilder:validation:Enum=v1
	// +kubebuilder:default=v1
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// kind of the referent. Service is the only addressable kind the operator resolves.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == 'Service'",message="kind must be Service: the only addressable kind the operator resolves (use uri for anything else)"
	Kind string `json:"kind"`

	// name of the Service.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// namespace of the Service; it must be the resource's own (a session does not send to
	// other namespaces on a tenant's word).
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// port of the Service; default the scheme's (80 or 443).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`

	// scheme is http (default) or https.
	// +kubebuilder:validation:Enum=http;https
	// +optional
	Scheme string `json:"scheme,omitempty"`
}

// EventFilter selects events; a field left empty does not filter.
type EventFilter struct {
	// types of events to deliver.
	// +kubebuilder:validation:MaxItems=4
	// +listType=set
	// +optional
	Types []EventType `json:"types,omitempty"`

	// chats (WhatsApp JIDs, e.g. 14155550123@s.whatsapp.net or 1203630...@g.us) whose events to
	// deliver.
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:items:Pattern=`^[^\s@]+@[a-z.]+$`
	// +optional
	Chats []string `json:"chats,omitempty"`
}

// SigningSecretRef names the keys of a Secret in the resource's namespace that sign requests.
type SigningSecretRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`

	// keys of the Secret's data to sign with: one, or two while rotating. Default [secret].
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=2
	// +listType=set
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:default={secret}
	// +optional
	Keys []string `json:"keys,omitempty"`
}

// EventDelivery bounds the tries for each event (named after Knative's DeliverySpec). Events
// are retried on network errors, timeouts, 408, 429 and 5xx, with exponential backoff and full
// jitter between backoffDelay and backoffMax (a Retry-After is honoured up to backoffMax);
// any other answer outside 2xx is final.
// +kubebuilder:validation:XValidation:rule="!has(self.backoffDelay) || !has(self.backoffMax) || duration(self.backoffDelay) <= duration(self.backoffMax)",message="backoffDelay must not exceed backoffMax",fieldPath=".backoffDelay"
type EventDelivery struct {
	// timeout of one request. Default 10s; 1s to 5m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('5m')",message="timeout must be between 1s and 5m"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// backoffDelay is the first pause between tries. Default 1s; 100ms to 1h.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('1h')",message="backoffDelay must be between 100ms and 1h"
	// +optional
	BackoffDelay *metav1.Duration `json:"backoffDelay,omitempty"`

	// backoffMax is the longest pause between tries. Default 5m; 1s to 1h.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="backoffMax must be between 1s and 1h"
	// +optional
	BackoffMax *metav1.Duration `json:"backoffMax,omitempty"`

	// maxAge is how long after it reached the inbox an event is retried. Then it goes to
	// deadLetterSink if set, otherwise it stays in the inbox (not delivered) with a Warning
	// event, and the sink moves on. Default 24h; 10s to 720h.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s') && duration(self) <= duration('720h')",message="maxAge must be between 10s and 720h"
	// +optional
	MaxAge *metav1.Duration `json:"maxAge,omitempty"`

	// deadLetterSink receives, once, each event the sink did not take within maxAge or refused
	// for good (a 4xx other than 408 and 429). Same signing as the sink.
	// +optional
	DeadLetterSink *Destination `json:"deadLetterSink,omitempty"`
}

// EventsDelivering is the condition type the session sets on the resource while it has sinks:
// True when every sink takes its events, False naming a sink that is failing and the class
// of its error. It changes only on transitions, never per event.
const ConditionEventsDelivering = "EventsDelivering"

// Reasons of the EventsDelivering condition.
const (
	ReasonEventsDelivered = "Delivered"
	ReasonSinkFailing     = "SinkFailing"
	// ReasonEventsGivenUp: a sink gave up on events (maximum age, or refused) and no dead-letter
	// sink took them; they stay in the inbox. The controller records a Warning event for it.
	ReasonEventsGivenUp = "EventsGivenUp"
	// ReasonStoreFull: the device store (volume or database) is full; incoming messages are
	// not acknowledged, so WhatsApp keeps them until there is room. Set with or without sinks.
	ReasonStoreFull = "StoreFull"
)
