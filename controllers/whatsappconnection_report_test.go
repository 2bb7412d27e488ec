package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// TestHaltOnSessionReport: which session reports halt the resource, and which let the pass go on.
func TestHaltOnSessionReport(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "shop-session", UID: "pod-1"}}
	ours := &whatsappv1alpha1.Holder{Pod: "shop-session", UID: "pod-1"}
	cases := map[string]struct {
		conn               whatsappv1alpha1.ConnectionStatus
		maxAttempts        int32
		conflict, degraded string // reasons; "" for none
		stops              bool
	}{
		"connected":                      {conn: whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionConnected, Holder: ours}},
		"replaced":                       {conn: whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionReplaced, Holder: ours}, conflict: whatsappv1alpha1.ReasonStreamReplaced, stops: true},
		"replaced, older pod":            {conn: whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionReplaced, Holder: &whatsappv1alpha1.Holder{Pod: "shop-session", UID: "pod-0"}}},
		"store of another one":           {conn: whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionStoreError, FailureCode: sessionenv.StoreClassOwnedElsewhere, Holder: ours}, conflict: whatsappv1alpha1.ReasonStoreOwnedElsewhere, stops: true},
		"store unreachable":              {conn: whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionStoreError, FailureCode: "Unreachable", Holder: ours}},
		"another account's scan":         {conn: whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing, UnexpectedAccount: "+1415", Holder: ours}, conflict: whatsappv1alpha1.ReasonUnexpectedAccount},
		"attempts at the limit":          {conn: whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionDisconnected, ReconnectAttempts: 3, Holder: ours}, maxAttempts: 3, degraded: whatsappv1alpha1.ReasonReconnectLimit, stops: true},
		"the default limit, unset in Go": {conn: whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionDisconnected, ReconnectAttempts: whatsappv1alpha1.DefaultReconnectMaxAttempts, Holder: ours}, degraded: whatsappv1alpha1.ReasonReconnectLimit, stops: true},
		"attempts below it":              {conn: whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionDisconnected, ReconnectAttempts: 2, Holder: ours}, maxAttempts: 3},
	}
	reason := func(v *verdict) string {
		if v == nil {
			return ""
		}
		return v.reason
	}
	for name, c := range cases {
		wac := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "shop"}}
		wac.Spec.Reconnect.MaxAttempts = c.maxAttempts
		wac.Status.Connection = c.conn.DeepCopy()
		p := newPass(wac)
		p.pod = pod
		res, err := (&WhatsAppConnectionReconciler{}).haltOnSessionReport(context.Background(), p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if reason(p.conflict) != c.conflict || reason(p.degraded) != c.degraded || (res != nil) != c.stops {
			t.Errorf("%s: conflict %q, degraded %q, stops %v; want %q, %q, %v", name, reason(p.conflict), reason(p.degraded), res != nil, c.conflict, c.degraded, c.stops)
		}
	}
}
