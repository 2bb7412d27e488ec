package session

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// TestStatusApplyBodyWritesEveryConnectionField: the session's apply body carries every field
// of status.connection it decided, its identity, and nothing else of the resource.
func TestStatusApplyBodyWritesEveryConnectionField(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))
	conn := whatsappv1alpha1.ConnectionStatus{
		State: whatsappv1alpha1.SessionPairing, Holder: &whatsappv1alpha1.Holder{Pod: "shop-session", UID: "u"},
		QRCode: "2@qr", QRCodeTerminal: "\\n#", QRExpiresAt: &at, PairingCode: "ABCD-EFGH", PairingCodeExpiresAt: &at,
		JID: "1:2@s.whatsapp.net", PushName: "Shop", Platform: "android", LastConnectedAt: &at, ReconnectAttempts: 2,
		BanExpiresAt: &at, FailureCode: "401", LastHandledReconnectAt: "r1", UnexpectedAccount: "+1415", LastHandledLogoutAt: "l1",
		Message: "m",
	}
	// A field added to ConnectionStatus must be set here, so that the round trip covers it.
	v := reflect.ValueOf(conn)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("the fixture leaves connection.%s empty: set it, so the round trip proves it is written", v.Type().Field(i).Name)
		}
	}
	c := &apiClient{namespace: "ns", connection: "shop"}
	body, err := c.statusApplyBody(sessionStatus{Connection: &conn})
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   map[string]string `json:"metadata"`
		Status     map[string]json.RawMessage
		Spec       json.RawMessage
	}
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatal(err)
	}
	if obj.APIVersion != whatsappv1alpha1.GroupVersion.String() || obj.Kind != "WhatsAppConnection" ||
		!reflect.DeepEqual(obj.Metadata, map[string]string{"namespace": "ns", "name": "shop"}) || obj.Spec != nil {
		t.Errorf("identity or extra fields: %s", body)
	}
	if len(obj.Status) != 1 {
		t.Errorf("the body writes status fields besides connection: %s", body)
	}
	var back whatsappv1alpha1.ConnectionStatus
	if err := json.Unmarshal(obj.Status["connection"], &back); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(back, conn) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, conn)
	}

	// Emptied fields are left out, which gives up their ownership and so clears them (a QR code
	// does not outlive its window).
	body, err = c.statusApplyBody(sessionStatus{Connection: &whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionConnected}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `"status":{"connection":{"state":"Connected"}}`; !json.Valid(body) || !strings.Contains(string(body), want) {
		t.Errorf("an emptied connection applies %s, want %s", body, want)
	}
}
