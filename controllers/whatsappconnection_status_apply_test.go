package controllers

import (
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// TestStatusApplyWritesEveryOwnedField: what the controller decides is what its apply body
// carries, field for field, and nothing of the session's.
func TestStatusApplyWritesEveryOwnedField(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))
	cond := func(typ string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: metav1.ConditionFalse, Reason: "R" + typ, Message: "m", ObservedGeneration: 3, LastTransitionTime: at}
	}
	decided := whatsappv1alpha1.WhatsAppConnectionStatus{
		Phase:   whatsappv1alpha1.PhaseConflict,
		Account: "+14155550123",
		Conditions: []metav1.Condition{cond(whatsappv1alpha1.ConditionReady), cond(whatsappv1alpha1.ConditionPaired),
			cond(whatsappv1alpha1.ConditionConnected), cond(whatsappv1alpha1.ConditionConflict), cond(whatsappv1alpha1.ConditionDegraded)},
		ObservedGeneration:     3,
		SessionPod:             "shop-session",
		LastHandledReconnectAt: "2026-11-30T09:00:00Z",
	}
	// A field added to the status type must be set here, so that the round trip covers it.
	v := reflect.ValueOf(decided)
	for i := range v.NumField() {
		if name := v.Type().Field(i).Name; name != "Connection" && v.Field(i).IsZero() {
			t.Fatalf("the fixture leaves status.%s empty: set it, so the round trip proves it is written", name)
		}
	}

	// What the pass read: the session's connection and a condition of the session's own.
	withSession := *decided.DeepCopy()
	withSession.Connection = &whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing, QRCode: "2@qr"}
	withSession.Conditions = append(withSession.Conditions, cond("EventsDelivering"))

	u, err := newStatusApply("ns", "shop", withSession).unstructured()
	if err != nil {
		t.Fatal(err)
	}
	if u.GetAPIVersion() != whatsappv1alpha1.GroupVersion.String() || u.GetKind() != "WhatsAppConnection" || u.GetNamespace() != "ns" || u.GetName() != "shop" {
		t.Errorf("identity: %s %s %s/%s", u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
	}
	for key := range u.Object {
		if key != "apiVersion" && key != "kind" && key != "metadata" && key != "status" {
			t.Errorf("the body carries %q: the controller applies only status", key)
		}
	}
	if _, ok := u.Object["status"].(map[string]any)["connection"]; ok {
		t.Error("the body carries status.connection, which the session owns")
	}
	var back whatsappv1alpha1.WhatsAppConnectionStatus
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object["status"].(map[string]any), &back); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(back, decided) {
		t.Errorf("round trip lost or added fields:\n got %+v\nwant %+v", back, decided)
	}

	// Emptied fields are left out, which gives up their ownership and so clears them.
	u, err = newStatusApply("ns", "shop", whatsappv1alpha1.WhatsAppConnectionStatus{ObservedGeneration: 4}).unstructured()
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Object["status"]; !reflect.DeepEqual(got, map[string]any{"observedGeneration": int64(4)}) {
		t.Errorf("an emptied status applies %v", got)
	}
}
