package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// SessionState is the session runtime's view of its WhatsApp connection.
// +kubebuilder:validation:Enum=Starting;WaitingForLease;Pairing;Connecting;Connected;Disconnected;Replaced;LoggedOut;ClientOutdated;TemporaryBan;ConnectFailure;PairingTimeout;StoreError
type SessionState string

const (
	SessionStarting        SessionState = "Starting"
	SessionWaitingForLease SessionState = "WaitingForLease"
	SessionPairing         SessionState = "Pairing"
	SessionConnecting      SessionState = "Connecting"
	SessionConnected       SessionState = "Connected"
	SessionDisconnected    SessionState = "Disconnected"
	// SessionReplaced: WhatsApp closed the connection because another client logged in with the
	// same keys (stream error conflict/replaced). The session does not reconnect.
	SessionReplaced SessionState = "Replaced"
	// SessionLoggedOut: the device was removed from the account; the store was wiped.
	SessionLoggedOut      SessionState = "LoggedOut"
	SessionClientOutdated SessionState = "ClientOutdated"
	SessionTemporaryBan   SessionState = "TemporaryBan"
	SessionConnectFailure SessionState = "ConnectFailure"
	SessionPairingTimeout SessionState = "PairingTimeout"
	SessionStoreError     SessionState = "StoreError"
)

// ConnectionStatus is written by the session pod only.
type ConnectionStatus struct {
	// state of the WhatsApp connection as the session sees it.
	// +optional
	State SessionState `json:"state,omitempty"`

	// holder is the session pod that wrote this status. The controller ignores the status when
	// the holder is not its current session pod.
	// +optional
	Holder *Holder `json:"holder,omitempty"`

	// qrCode is the payload to scan while pairing with method QR. Anyone who may read this
	// resource can link a device with it while it is valid.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	QRCode string `json:"qrCode,omitempty"`

	// qrCodeTerminal draws qrCode in Unicode half blocks, starting with a newline, so that
	// kubectl describe shows a code a phone can scan.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	QRCodeTerminal string `json:"qrCodeTerminal,omitempty"`

	// qrExpiresAt is when qrCode stops being valid; the session publishes the next one.
	// +optional
	QRExpiresAt *metav1.Time `json:"qrExpiresAt,omitempty"`

	// pairingCode is the code to enter on the phone while pairing with method PhoneCode.
	// +kubebuilder:validation:MaxLength=16
	// +optional
	PairingCode string `json:"pairingCode,omitempty"`

	// pairingCodeExpiresAt is when pairingCode stops being valid.
	// +optional
	PairingCodeExpiresAt *metav1.Time `json:"pairingCodeExpiresAt,omitempty"`

	// jid is the device's WhatsApp ID once paired (number:device@s.whatsapp.net).
	// +kubebuilder:validation:MaxLength=128
	// +optional
	JID string `json:"jid,omitempty"`

	// pushName is the account's display name.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	PushName string `json:"pushName,omitempty"`

	// platform the phone reported at pairing.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Platform string `json:"platform,omitempty"`

	// lastConnectedAt is when the session last logged in.
	// +optional
	LastConnectedAt *metav1.Time `json:"lastConnectedAt,omitempty"`

	// reconnectAttempts counts consecutive failed connects since the last success.
	// +kubebuilder:validation:Minimum=0
	// +optional
	ReconnectAttempts int32 `json:"reconnectAttempts,omitempty"`

	// banExpiresAt is when a TemporaryBan ends.
	// +optional
	BanExpiresAt *metav1.Time `json:"banExpiresAt,omitempty"`

	// failureCode is WhatsApp's code for the last connect failure or stream error, or in state
	// StoreError the class of the store's failure (DSNInvalid, Unreachable, AuthenticationFailed,
	// OwnedByAnotherResource, ...).
	// +kubebuilder:validation:MaxLength=64
	// +optional
	FailureCode string `json:"failureCode,omitempty"`

	// lastHandledReconnectAt echoes the reconnect-requested-at token the session acted on.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	LastHandledReconnectAt string `json:"lastHandledReconnectAt,omitempty"`

	// unexpectedAccount is the account (+ and digits) of a phone other than
	// spec.pairing.phoneNumber that linked this device; the session logged that device out and
	// pairs again. Cleared when the expected account links it.
	// +kubebuilder:validation:MaxLength=32
	// +optional
	UnexpectedAccount string `json:"unexpectedAccount,omitempty"`

	// lastHandledLogoutAt echoes the logout-requested-at token the session acted on.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	LastHandledLogoutAt string `json:"lastHandledLogoutAt,omitempty"`

	// message is a human-readable detail of the state.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Message string `json:"message,omitempty"`
}

// Holder identifies a session pod incarnation.
type Holder struct {
	// pod name.
	// +kubebuilder:validation:MaxLength=253
	Pod string `json:"pod"`
	// uid of the pod.
	// +kubebuilder:validation:MaxLength=64
	UID string `json:"uid"`
}
