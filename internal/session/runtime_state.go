package session

import whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"

// State is the session's state as it last published it, for the send API: WaitingForLease
// while this process does not hold the Lease, Starting before the first state is published.
func (r *Runtime) State() whatsappv1alpha1.SessionState {
	m := r.machine.Load()
	if m == nil || !r.fence.holding() {
		return whatsappv1alpha1.SessionWaitingForLease
	}
	if s, ok := m.state.Load().(whatsappv1alpha1.SessionState); ok {
		return s
	}
	return whatsappv1alpha1.SessionStarting
}
