package v1alpha1

// DefaultReconnectMaxAttempts is the CRD's default of spec.reconnect.maxAttempts (the
// +kubebuilder:default marker, which must be a literal; a test keeps the two equal).
const DefaultReconnectMaxAttempts int32 = 3

// Limit is how many consecutive failed connects the session makes before it stops: the one rule
// the controller (which reports ReconnectLimitReached) and the session (which stops) apply.
// The API server defaults the field; an object built in Go without it gets the same default.
func (r ReconnectSpec) Limit() int32 {
	if r.MaxAttempts < 1 {
		return DefaultReconnectMaxAttempts
	}
	return r.MaxAttempts
}
