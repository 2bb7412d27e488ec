// Package sessionenv names the environment and flags through which the controller tells a
// session pod who it is, which Lease fences it and where its device store is. It is the whole
// contract between the pod spec the controller renders and the session runtime that reads it.
package sessionenv

import "time"

const (
	// ConnectionName is the WhatsAppConnection's name (from the pod's connection label).
	ConnectionName = "WA_CONNECTION_NAME"
	// Namespace of the resource and the pod.
	Namespace = "WA_NAMESPACE"
	// PodName is the session's Lease identity and, with PodUID, its status.connection.holder.
	PodName = "WA_POD_NAME"
	PodUID  = "WA_POD_UID"
	// LeaseName is the Lease the controller created for the session to hold.
	LeaseName = "WA_LEASE_NAME"
	// StoreType is "sqlite" or "postgres".
	StoreType = "WA_STORE_TYPE"
	// SQLitePath is the device database file on the store volume.
	SQLitePath = "WA_SQLITE_PATH"
	// PostgresDSN is the DSN read from the Secret the resource names.
	PostgresDSN = "WA_POSTGRES_DSN"
	// PostgresDSNFile is the same key of the same Secret as a file of an optional Secret
	// volume, which the kubelet keeps up to date: the session compares it with PostgresDSN to
	// notice that the Secret changed (an env never changes in a running container).
	PostgresDSNFile = "WA_POSTGRES_DSN_FILE"
)

// Flags of the session command that the controller sets.
const (
	FlagHealthProbeBindAddress = "health-probe-bind-address"
	FlagMetricsBindAddress     = "metrics-bind-address"
	FlagLeaseDuration          = "lease-duration"
	FlagRenewDeadline          = "renew-deadline"
	FlagRetryPeriod            = "retry-period"
)

// Default Lease timings, shared by the session's flags and the manager's --session-* flags.
// RenewDeadline must exceed 1.2 × RetryPeriod (client-go's rule, kept), and the holder writes
// the Lease once per RetryPeriod: 10 s gives 360 writes per idle hour, a tenth under the 400
// budget (9 s would sit exactly on it). A session drops WhatsApp RenewDeadline after the start of
// its last good renewal, 2.5 s before anyone else may take the Lease, and retries a failed
// renewal every second until then; a replacement pod acquires at most LeaseDuration after the
// last renewal.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 12500 * time.Millisecond
	DefaultRetryPeriod   = 10 * time.Second
)
