package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The halt rule, written once for the controller, the session and kubectl whatsapp.
//
// A WhatsAppConnection is halted while its Conflict or Degraded condition is True. A halt either
// lifts by itself, because its blocker goes (another object, a claim, a Lease: the controller's
// watches see it) or because the session tries again on its own (a store that may open, a ban
// that ends, a QR code the right phone may still scan), or it waits for a person: a new
// reconnect-requested-at token or a spec change.

// haltsThatLiftByThemselves are the halt reasons that need no person.
var haltsThatLiftByThemselves = map[string]bool{
	ReasonResourceNotOwned:     true,
	ReasonDuplicatePhoneNumber: true,
	ReasonDuplicateDevice:      true,
	ReasonLeaseHeldElsewhere:   true,
	// The session keeps pairing; the condition follows its report.
	ReasonUnexpectedAccount: true,
	// The session retries opening the store with backoff.
	ReasonStoreOwnedElsewhere: true,
	ReasonStoreError:          true,
	// The session tries once more when the ban ends.
	ReasonTemporaryBan: true,
}

// HaltLiftsByItself reports whether a halt with this reason ends without a person's action.
func HaltLiftsByItself(reason string) bool {
	return haltsThatLiftByThemselves[reason]
}

// Halt is the condition that halts the resource, Conflict before Degraded, or nil.
func (s *WhatsAppConnectionStatus) Halt() *metav1.Condition {
	for _, typ := range []string{ConditionConflict, ConditionDegraded} {
		if c := meta.FindStatusCondition(s.Conditions, typ); c != nil && c.Status == metav1.ConditionTrue {
			return c
		}
	}
	return nil
}

// WaitingForPerson is the halt only a person lifts (kubectl whatsapp reconnect, after fixing
// the cause), or nil: waiting does not end it.
func (s *WhatsAppConnectionStatus) WaitingForPerson() *metav1.Condition {
	if c := s.Halt(); c != nil && !HaltLiftsByItself(c.Reason) {
		return c
	}
	return nil
}

// ResumesOnRequest reports whether a reconnect request restarts a session in this state in the
// same process: the session's own halts that a person lifts, a ban (at once rather than at its
// end), a logged-out device and a lost connection. Not Replaced: the controller answers that
// request with a new pod, so that one process never logs in twice with keys another client
// used. Not ClientOutdated: only another operator image helps.
func (s SessionState) ResumesOnRequest() bool {
	switch s {
	case SessionLoggedOut, SessionPairingTimeout, SessionTemporaryBan, SessionConnectFailure, SessionDisconnected:
		return true
	}
	return false
}
