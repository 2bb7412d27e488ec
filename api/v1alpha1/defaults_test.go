package v1alpha1_test

import (
	"strconv"
	"testing"

	"github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// TestReconnectLimitIsTheCRDDefault: what Go assumes when maxAttempts is unset is what the API
// server stores.
func TestReconnectLimitIsTheCRDDefault(t *testing.T) {
	def := generatedSchema(t).Properties["spec"].Properties["reconnect"].Properties["maxAttempts"].Default
	if def == nil || string(def.Raw) != strconv.Itoa(int(v1alpha1.DefaultReconnectMaxAttempts)) {
		t.Fatalf("CRD default %v, Go default %d", def, v1alpha1.DefaultReconnectMaxAttempts)
	}
	for set, want := range map[int32]int32{0: 3, 1: 1, 7: 7} {
		if got := (v1alpha1.ReconnectSpec{MaxAttempts: set}).Limit(); got != want {
			t.Errorf("maxAttempts %d: Limit() = %d, want %d", set, got, want)
		}
	}
}
