// Package sessionenv names the environment and flags through which the controller tells a
// session pod who it is, which Lease fences it and where its device store is. It is the whole
// contract between the pod spec the controller renders and the session runtime that reads it.
package sessionenv

import (
	"strings"
	"time"
)

const (
	// ConnectionName is the WhatsAppConnection's name (from the pod's connection label).
	ConnectionName = "WA_CONNECTION_NAME"
	// Namespace of the resource and the pod.
	Namespace = "WA_NAMESPACE"
	// PodName and PodUID (the downward API's metadata.name and metadata.uid) name the session:
	// together they are its Lease identity (LeaseIdentity) and its status.connection.holder.
	PodName = "WA_POD_NAME"
	PodUID  = "WA_POD_UID"
	// LeaseName is the Lease the controller created for the session to hold.
	LeaseName = "WA_LEASE_NAME"
	// StoreType is StoreSQLite or StorePostgres.
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

// LeaseIdentity is the holderIdentity a session pod writes into its Lease: the pod's name and
// UID. The UID makes every pod incarnation a different holder, so a successor that carries the
// same name never takes its predecessor's Lease for its own; the name keeps it readable.
func LeaseIdentity(podName, podUID string) string { return podName + "_" + podUID }

// IsSessionIdentity tells whether holder is a Lease identity of a pod named podName (any
// incarnation), as opposed to a foreign holder.
func IsSessionIdentity(holder, podName string) bool {
	return strings.HasPrefix(holder, podName+"_") && len(holder) > len(podName)+1
}

// Default Lease timings, shared by the session's flags and the manager's --session-* flags.
// Nobody compares clocks across machines: a Lease is taken from another holder only after it
// was seen unchanged for LeaseDuration on the taker's own clock, so these figures hold whatever
// the skew between nodes. The arithmetic (T = how long the API server may stop answering):
//
//   - Idle cost: the holder writes the Lease once per RetryPeriod: 3600 / 10 = 360 writes per
//     session-hour, under the 400 budget (9 s would sit exactly on it).
//   - API blips: the last good renewal started at t; the next is due at t + RetryPeriod. If the
//     API server stops answering just then, the session retries every StandbyPoll (1 s), each
//     attempt bounded by LeaseRequestTimeout (2 s), and drops WhatsApp only at t + RenewDeadline.
//     So a stall of T is survived when RetryPeriod + T + StandbyPoll + LeaseRequestTimeout ≤
//     RenewDeadline: 10 + T + 1 + 2 ≤ 32, T ≤ 19 s. A 10 s stall drops nothing, with 9 s to
//     spare: an API server that comes back from a stall on busy cores keeps timing requests out
//     for a few seconds more (the chaos suite saw ~3 s; 24 s left only 1 s and was not enough).
//   - Fencing: a session that cannot renew drops WhatsApp at t + RenewDeadline (32 s). Anyone
//     else first sees the record it wrote at t at or after t and waits LeaseDuration (40 s) of
//     its own clock from then: the 8 s between them (a fifth of the Lease) absorb clock rate
//     differences and a slow close. client-go's rule 1.2 × RetryPeriod < RenewDeadline holds.
//   - The price: a partition or a lost node, whose session cannot be proven dead, fails over
//     after a Lease duration (40 s) instead of 30 s.
//   - Failover does not wait for the Lease when the session is known dead (its container
//     terminated, as the kubelet reports): the controller releases the Lease and starts the
//     successor at once. Only an unprovable death (a partition, a lost node) costs a Lease
//     duration.
const (
	DefaultLeaseDuration = 40 * time.Second
	DefaultRenewDeadline = 32 * time.Second
	DefaultRetryPeriod   = 10 * time.Second
	// LeaseRequestTimeout bounds one Lease read or write of the session, so that a request the
	// stalled API server never answers is abandoned and retried instead of holding the renewal
	// loop until the renew deadline.
	LeaseRequestTimeout = 2 * time.Second
)
