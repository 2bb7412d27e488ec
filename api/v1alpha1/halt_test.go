package v1alpha1_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

func TestHaltRule(t *testing.T) {
	cond := func(typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason}
	}
	conflict := func(reason string) metav1.Condition { return cond(v1.ConditionConflict, metav1.ConditionTrue, reason) }
	degraded := func(reason string) metav1.Condition { return cond(v1.ConditionDegraded, metav1.ConditionTrue, reason) }
	cases := map[string]struct {
		conds          []metav1.Condition
		halt, waitsFor string // reasons; "" for none
	}{
		"no conditions":            {nil, "", ""},
		"connected":                {[]metav1.Condition{cond(v1.ConditionReady, metav1.ConditionTrue, "Connected"), cond(v1.ConditionConflict, metav1.ConditionFalse, v1.ReasonNoConflict)}, "", ""},
		"stream replaced":          {[]metav1.Condition{conflict(v1.ReasonStreamReplaced)}, v1.ReasonStreamReplaced, v1.ReasonStreamReplaced},
		"duplicate phone number":   {[]metav1.Condition{conflict(v1.ReasonDuplicatePhoneNumber)}, v1.ReasonDuplicatePhoneNumber, ""},
		"duplicate device":         {[]metav1.Condition{conflict(v1.ReasonDuplicateDevice)}, v1.ReasonDuplicateDevice, ""},
		"object not owned":         {[]metav1.Condition{conflict(v1.ReasonResourceNotOwned)}, v1.ReasonResourceNotOwned, ""},
		"lease held elsewhere":     {[]metav1.Condition{conflict(v1.ReasonLeaseHeldElsewhere)}, v1.ReasonLeaseHeldElsewhere, ""},
		"unexpected account":       {[]metav1.Condition{conflict(v1.ReasonUnexpectedAccount)}, v1.ReasonUnexpectedAccount, ""},
		"store owned elsewhere":    {[]metav1.Condition{conflict(v1.ReasonStoreOwnedElsewhere)}, v1.ReasonStoreOwnedElsewhere, ""},
		"reconnect limit":          {[]metav1.Condition{degraded(v1.ReasonReconnectLimit)}, v1.ReasonReconnectLimit, v1.ReasonReconnectLimit},
		"client outdated":          {[]metav1.Condition{degraded(v1.ReasonClientOutdated)}, v1.ReasonClientOutdated, v1.ReasonClientOutdated},
		"temporary ban":            {[]metav1.Condition{degraded(v1.ReasonTemporaryBan)}, v1.ReasonTemporaryBan, ""},
		"connect failure":          {[]metav1.Condition{degraded(v1.ReasonConnectFailure)}, v1.ReasonConnectFailure, v1.ReasonConnectFailure},
		"pairing timeout":          {[]metav1.Condition{degraded(v1.ReasonPairingTimeout)}, v1.ReasonPairingTimeout, v1.ReasonPairingTimeout},
		"store error":              {[]metav1.Condition{degraded(v1.ReasonStoreError)}, v1.ReasonStoreError, ""},
		"conflict before degraded": {[]metav1.Condition{degraded(v1.ReasonPairingTimeout), conflict(v1.ReasonDuplicateDevice)}, v1.ReasonDuplicateDevice, ""},
		"resumed halt":             {[]metav1.Condition{cond(v1.ConditionConflict, metav1.ConditionFalse, v1.ReasonResumed), cond(v1.ConditionDegraded, metav1.ConditionFalse, v1.ReasonResumed)}, "", ""},
		"unknown is not a halt":    {[]metav1.Condition{cond(v1.ConditionDegraded, metav1.ConditionUnknown, v1.ReasonPairingTimeout)}, "", ""},
	}
	reason := func(c *metav1.Condition) string {
		if c == nil {
			return ""
		}
		return c.Reason
	}
	for name, c := range cases {
		st := &v1.WhatsAppConnectionStatus{Conditions: c.conds}
		if got := reason(st.Halt()); got != c.halt {
			t.Errorf("%s: Halt() = %q, want %q", name, got, c.halt)
		}
		if got := reason(st.WaitingForPerson()); got != c.waitsFor {
			t.Errorf("%s: WaitingForPerson() = %q, want %q", name, got, c.waitsFor)
		}
	}
}

func TestSessionStatesAReconnectRequestResumes(t *testing.T) {
	cases := map[v1.SessionState]bool{
		v1.SessionStarting:        false,
		v1.SessionWaitingForLease: false,
		v1.SessionPairing:         false,
		v1.SessionConnecting:      false,
		v1.SessionConnected:       false,
		v1.SessionDisconnected:    true,
		v1.SessionReplaced:        false, // the controller answers with a new pod
		v1.SessionLoggedOut:       true,
		v1.SessionClientOutdated:  false, // only a new image helps
		v1.SessionTemporaryBan:    true,
		v1.SessionConnectFailure:  true,
		v1.SessionPairingTimeout:  true,
		v1.SessionStoreError:      false, // the session retries the store itself
	}
	for state, want := range cases {
		if got := state.ResumesOnRequest(); got != want {
			t.Errorf("%s.ResumesOnRequest() = %v, want %v", state, got, want)
		}
	}
}
