package v1alpha1

// Annotations a person sets to ask for an action. The value is a token (a timestamp is
// customary); a new token asks again, and the token handled is echoed in status.
const (
	// ReconnectRequestedAtAnnotation clears a Conflict or Degraded halt and tries once more.
	ReconnectRequestedAtAnnotation = "whatsapp.waoperator.io/reconnect-requested-at"
	// LogoutRequestedAtAnnotation logs the device out, wipes the store and pairs again.
	LogoutRequestedAtAnnotation = "whatsapp.waoperator.io/logout-requested-at"
)

// Labels on every object the controller creates for a WhatsAppConnection.
const (
	// ConnectionLabel holds the WhatsAppConnection's name.
	ConnectionLabel = "whatsapp.waoperator.io/connection"
)

// Condition types.
const (
	ConditionReady     = "Ready"
	ConditionPaired    = "Paired"
	ConditionConnected = "Connected"
	ConditionConflict  = "Conflict"
	ConditionDegraded  = "Degraded"
)

// Condition reasons. Each is documented in the README's troubleshooting table.
const (
	// Conflict=True reasons: the controller stops until a person acts or the blocker is gone.
	ReasonStreamReplaced       = "StreamReplaced"
	ReasonDuplicatePhoneNumber = "DuplicatePhoneNumber"
	ReasonDuplicateDevice      = "DuplicateDevice"
	ReasonResourceNotOwned     = "ResourceNotOwned"
	ReasonLeaseHeldElsewhere   = "LeaseHeldElsewhere"
	// ReasonUnexpectedAccount: a phone of another account than spec.pairing.phoneNumber linked
	// the device; the session logged it out and shows a new QR code (the session keeps pairing).
	ReasonUnexpectedAccount = "UnexpectedAccount"
	// ReasonStoreOwnedElsewhere: the device store belongs to another WhatsAppConnection (two
	// resources whose stores name one database); the session does not start on it.
	ReasonStoreOwnedElsewhere = "StoreOwnedElsewhere"

	// Degraded=True reasons.
	ReasonReconnectLimit = "ReconnectLimitReached"
	ReasonClientOutdated = "ClientOutdated"
	ReasonTemporaryBan   = "TemporaryBan"
	ReasonConnectFailure = "ConnectFailure"
	ReasonPairingTimeout = "PairingTimeout"
	ReasonStoreError     = "StoreError"

	// Ready=False reasons that wait for an input (a watch resumes them).
	ReasonSecretNotFound    = "SecretNotFound"
	ReasonSecretKeyNotFound = "SecretKeyNotFound"

	// Other reasons.
	ReasonSuspended       = "Suspended"
	ReasonPodPending      = "SessionPodPending"
	ReasonPodRejected     = "SessionPodRejected"
	ReasonPodCrashed      = "SessionPodCrashed"
	ReasonWaitingForPod   = "WaitingForOldPodGone"
	ReasonWaitingForLease = "WaitingForLeaseExpiry"
	ReasonNodeLost        = "SessionNodeLost"
	// ReasonSessionUnresponsive: the session pod held its Lease, stopped renewing it and did not
	// exit (a frozen process); it was force-deleted once the Lease stood still for its duration.
	ReasonSessionUnresponsive = "SessionUnresponsive"
	ReasonLoggedOut           = "LoggedOut"
	ReasonNoConflict          = "NoConflict"
	ReasonAsExpected          = "AsExpected"
	ReasonNotPaired           = "NotPaired"
	ReasonPaired              = "Paired"
	ReasonResumed             = "Resumed"
	ReasonDeleting            = "Deleting"
)
