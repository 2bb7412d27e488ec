package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PairingMethod is how a new device is linked to a WhatsApp account.
// +kubebuilder:validation:Enum=QR;PhoneCode
type PairingMethod string

const (
	// PairingMethodQR publishes QR codes in status for a phone to scan.
	PairingMethodQR PairingMethod = "QR"
	// PairingMethodPhoneCode publishes an 8-character code to enter on the phone.
	PairingMethodPhoneCode PairingMethod = "PhoneCode"
)

// WhatsAppConnectionSpec is the desired state of one WhatsApp linked device.
type WhatsAppConnectionSpec struct {
	// pairing says how the device is linked to the account the first time (and after a logout).
	// +kubebuilder:default={method: QR}
	// +optional
	Pairing PairingSpec `json:"pairing,omitempty"`

	// deviceName is the name the phone lists under "Linked devices".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:default=whatsapp-operator
	// +optional
	DeviceName string `json:"deviceName,omitempty"`

	// store is where the device keys live. Exactly one of sqlite (a PersistentVolumeClaim, the
	// default) or postgres. It cannot be changed once set: moving the keys is a new device.
	// +kubebuilder:default={sqlite: {}}
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="store is immutable; create a new WhatsAppConnection to move the device"
	// +optional
	Store StoreSpec `json:"store,omitzero"` // omitzero: a Go client must not send a zero store as store: {}, which the one-of rule rejects

	// suspend disconnects the device and removes the session pod. The device store is kept, so
	// resuming (suspend: false) reconnects without pairing again.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// reconnect bounds automatic reconnection after the connection drops.
	// +kubebuilder:default={maxAttempts: 3}
	// +optional
	Reconnect ReconnectSpec `json:"reconnect,omitempty"`

	// logoutOnDelete logs the device out of the account (it disappears from the phone's linked
	// devices) when this resource is deleted. Default true.
	// +kubebuilder:default=true
	// +optional
	LogoutOnDelete *bool `json:"logoutOnDelete,omitempty"`

	// session overrides the session pod's scheduling and resources. It cannot change the
	// program, its arguments or environment, nor the WhatsApp endpoint.
	// +optional
	Session SessionPodSpec `json:"session,omitempty"`

	// events delivers what the connection receives to HTTP sinks as CloudEvents.
	// +optional
	Events *EventsSpec `json:"events,omitempty"`

	// send configures the send API: its rate limit and TLS.
	// +optional
	Send *SendSpec `json:"send,omitempty"`
}

// PairingSpec says how the device is linked.
// +kubebuilder:validation:XValidation:rule="self.method != 'PhoneCode' || has(self.phoneNumber)",message="phoneNumber is required when method is PhoneCode",fieldPath=".phoneNumber"
type PairingSpec struct {
	// method is QR (scan a code shown in status) or PhoneCode (type a code shown in status into
	// the phone, which needs phoneNumber).
	// +kubebuilder:default=QR
	// +optional
	Method PairingMethod `json:"method,omitempty"`

	// phoneNumber is the account's number in E.164 form (+ then country code and number, no
	// spaces). Required for PhoneCode. Two resources may not claim the same number.
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^\\\\+[1-9][0-9]{6,14}$')",message="phoneNumber must be in E.164 form, e.g. +14155550123"
	// +optional
	PhoneNumber string `json:"phoneNumber,omitempty"`
}

// StoreSpec selects the device store. Exactly one field is set.
// +kubebuilder:validation:XValidation:rule="(has(self.sqlite) ? 1 : 0) + (has(self.postgres) ? 1 : 0) == 1",message="exactly one of sqlite or postgres must be set"
type StoreSpec struct {
	// sqlite keeps the device in an SQLite file on a PersistentVolumeClaim owned by this
	// resource. The claim survives pod restarts; it is deleted with the resource.
	// +optional
	SQLite *SQLiteStore `json:"sqlite,omitempty"`

	// postgres keeps the device in a PostgreSQL database whose DSN is read from a Secret.
	// +optional
	Postgres *PostgresStore `json:"postgres,omitempty"`
}

// SQLiteStore is a device store on a PersistentVolumeClaim.
type SQLiteStore struct {
	// size of the PersistentVolumeClaim. Default 1Gi.
	// +kubebuilder:default="1Gi"
	// +optional
	Size resource.Quantity `json:"size,omitzero"` // omitzero: a zero Quantity marshals as "0", which would bypass the 1Gi default

	// storageClassName of the PersistentVolumeClaim; empty means the cluster's default class.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// PostgresStore is a device store in PostgreSQL.
type PostgresStore struct {
	// secretRef names the Secret, in this namespace, and its key holding the DSN
	// (e.g. postgres://user:pass@host:5432/db?sslmode=verify-full: verify the server certificate
	// and its host name).
	SecretRef SecretKeyRef `json:"secretRef"`
}

// SecretKeyRef names a key of a Secret in the resource's namespace.
type SecretKeyRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`

	// key in the Secret's data. Default dsn.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:default=dsn
	// +optional
	Key string `json:"key,omitempty"`
}

// ReconnectSpec bounds automatic reconnection.
type ReconnectSpec struct {
	// maxAttempts is how many consecutive failed connects the session makes before it stops and
	// the resource becomes Degraded. Default 3.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=3
	// +optional
	MaxAttempts int32 `json:"maxAttempts,omitempty"`
}

// SessionPodSpec holds pod-level overrides for the session pod. Changing any of them replaces
// the pod (the old one is gone before the new one starts).
type SessionPodSpec struct {
	// image of the session container; default: the operator's own image.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// imagePullPolicy of the session container.
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	// +optional
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// resources of the session container; default: the manager's --session-cpu-request (10m),
	// --session-memory-request (64Mi) and --session-memory-limit (256Mi).
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// nodeSelector of the session pod.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations of the session pod.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// affinity of the session pod.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// priorityClassName of the session pod.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// WhatsAppConnectionStatus is the observed state. The controller owns every field but
// connection, which the session pod owns; each writes through server-side apply with its own
// field manager.
type WhatsAppConnectionStatus struct {
	// phase is a one-word summary: Pending, Pairing, Connecting, Connected, Disconnected,
	// Conflict, LoggedOut, Suspended or Degraded.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// account is the phone number from the spec or, once paired, the account's JID.
	// +optional
	Account string `json:"account,omitempty"`

	// conditions: Ready, Paired, Connected, Conflict, Degraded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation the controller last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// sessionPod is the name of the pod that runs the session.
	// +optional
	SessionPod string `json:"sessionPod,omitempty"`

	// lastHandledReconnectAt echoes the reconnect-requested-at annotation token the controller
	// last acted on.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	LastHandledReconnectAt string `json:"lastHandledReconnectAt,omitempty"`

	// connection is what the session pod observes of WhatsApp. Written only by the pod named in
	// connection.holder; the controller ignores it when that is not the current session pod.
	// +optional
	Connection *ConnectionStatus `json:"connection,omitempty"`
}

// Phase summarises a WhatsAppConnection.
// +kubebuilder:validation:Enum=Pending;Pairing;Connecting;Connected;Disconnected;Conflict;LoggedOut;Suspended;Degraded
type Phase string

const (
	PhasePending      Phase = "Pending"
	PhasePairing      Phase = "Pairing"
	PhaseConnecting   Phase = "Connecting"
	PhaseConnected    Phase = "Connected"
	PhaseDisconnected Phase = "Disconnected"
	PhaseConflict     Phase = "Conflict"
	PhaseLoggedOut    Phase = "LoggedOut"
	PhaseSuspended    Phase = "Suspended"
	PhaseDegraded     Phase = "Degraded"
)

// Phases are all phases, in the order of the enum above (the manager's
// whatsapp_operator_connection_phase exports one series per phase).
var Phases = []Phase{PhasePending, PhasePairing, PhaseConnecting, PhaseConnected, PhaseDisconnected,
	PhaseConflict, PhaseLoggedOut, PhaseSuspended, PhaseDegraded}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wac,categories=whatsapp
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Phone/JID",type=string,JSONPath=`.status.account`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 55",message="metadata.name must be at most 55 characters (the session pod and its objects add a suffix)"

// WhatsAppConnection is one WhatsApp linked device (multi-device, WhatsApp Web protocol), run
// by exactly one session pod. Its status shows the QR code or pairing code while pairing and
// the connection's state afterwards.
type WhatsAppConnection struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +optional
	Spec WhatsAppConnectionSpec `json:"spec,omitempty"`

	// status is the observed state.
	// +optional
	Status WhatsAppConnectionStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// WhatsAppConnectionList is a list of WhatsAppConnection.
type WhatsAppConnectionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WhatsAppConnection `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WhatsAppConnection{}, &WhatsAppConnectionList{})
}
