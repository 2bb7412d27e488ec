package session

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// A manifest re-applied (or restored from a backup) with the token of an earlier logout still
// in it must not wipe the device: a token older than the resource is handled without a logout.
func TestLogoutTokenOlderThanTheResourceIsIgnored(t *testing.T) {
	g := NewWithT(t)
	wac := testConnection()
	created := time.Now().Add(-time.Minute).Truncate(time.Second)
	wac.CreationTimestamp = metav1.NewTime(created)
	h := startMachine(t, newFakeClient("1555:1@s.whatsapp.net"), wac)
	h.cli.events <- Connected{JID: "1555:1@s.whatsapp.net"}
	g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionConnected))

	old := created.Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	h.update(func(w *whatsappv1alpha1.WhatsAppConnection) {
		w.Annotations = map[string]string{whatsappv1alpha1.LogoutRequestedAtAnnotation: old}
	})
	g.Eventually(func() string { return h.pub.Last().LastHandledLogoutAt }, wait, tick).Should(Equal(old))
	g.Expect(h.cli.count("logout")).To(BeZero())
	g.Expect(h.pub.Last().State).To(Equal(whatsappv1alpha1.SessionConnected))

	// A token from after the creation still logs out.
	fresh := created.Add(time.Second).UTC().Format(time.RFC3339Nano)
	h.update(func(w *whatsappv1alpha1.WhatsAppConnection) {
		w.Annotations = map[string]string{whatsappv1alpha1.LogoutRequestedAtAnnotation: fresh}
	})
	g.Eventually(func() int { return h.cli.count("logout") }, wait, tick).Should(Equal(1))
}

// A token longer than the status field allows would make every status write fail: it is
// ignored, never echoed.
func TestOverlongRequestTokensAreNotEchoed(t *testing.T) {
	g := NewWithT(t)
	long := strings.Repeat("7", whatsappv1alpha1.MaxRequestTokenLength+1)
	h := startMachine(t, newFakeClient("1555:1@s.whatsapp.net"), testConnection())
	h.cli.events <- Connected{JID: "1555:1@s.whatsapp.net"}
	g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionConnected))
	h.update(func(w *whatsappv1alpha1.WhatsAppConnection) {
		w.Annotations = map[string]string{
			whatsappv1alpha1.LogoutRequestedAtAnnotation:    long,
			whatsappv1alpha1.ReconnectRequestedAtAnnotation: long,
		}
	})
	g.Consistently(func() []string {
		return []string{h.pub.Last().LastHandledLogoutAt, h.pub.Last().LastHandledReconnectAt}
	}, 300*time.Millisecond, tick).Should(Equal([]string{"", ""}))
	g.Expect(h.cli.count("logout")).To(BeZero())
}
