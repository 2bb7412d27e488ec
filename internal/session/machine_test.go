package session

import (
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

const (
	wait = 5 * time.Second
	tick = 10 * time.Millisecond
)

func TestQRCodesRotateThenWindowsRunOutIntoPairingTimeout(t *testing.T) {
	g := NewWithT(t)
	h := startMachine(t, newFakeClient(""), testConnection())
	g.Eventually(h.cli.Calls, wait, tick).Should(Equal([]string{"connect"}))

	h.cli.events <- QRCodes{Codes: []string{"c1", "c2"}}
	g.Eventually(func() string { return h.pub.Last().QRCode }, wait, tick).Should(Equal("c1"))
	first := h.pub.Last()
	g.Expect(first.State).To(Equal(whatsappv1alpha1.SessionPairing))
	g.Expect(first.QRExpiresAt).NotTo(BeNil())
	g.Expect(first.QRCodeTerminal).To(HavePrefix("\n"))
	g.Expect(first.QRCodeTerminal).NotTo(ContainSubstring("c1"))
	g.Eventually(func() string { return h.pub.Last().QRCode }, wait, tick).Should(Equal("c2"))

	// The window runs out: the registration is closed and, after a backoff, a second opens.
	g.Eventually(func() int { return h.cli.count("connect") }, wait, tick).Should(Equal(2))
	g.Expect(h.cli.count("disconnect")).To(Equal(1))
	h.cli.events <- QRCodes{Codes: []string{"d1"}}
	g.Eventually(func() string { return h.pub.Last().QRCode }, wait, tick).Should(Equal("d1"))

	// The second window (of two) runs out too: PairingTimeout, no further connect.
	g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionPairingTimeout))
	g.Expect(h.pub.Last().QRCode).To(BeEmpty())
	g.Consistently(func() int { return h.cli.count("connect") }, 300*time.Millisecond, tick).Should(Equal(2))

	// A reconnect request resumes pairing in place and is echoed.
	h.update(func(w *whatsappv1alpha1.WhatsAppConnection) {
		w.Annotations = map[string]string{whatsappv1alpha1.ReconnectRequestedAtAnnotation: "t1"}
	})
	g.Eventually(func() int { return h.cli.count("connect") }, wait, tick).Should(Equal(3))
	g.Eventually(func() string { return h.pub.Last().LastHandledReconnectAt }, wait, tick).Should(Equal("t1"))
}

func TestPhoneCodeIsRequestedAfterTheFirstQREvent(t *testing.T) {
	g := NewWithT(t)
	wac := testConnection()
	wac.Spec.Pairing = whatsappv1alpha1.PairingSpec{Method: whatsappv1alpha1.PairingMethodPhoneCode, PhoneNumber: "+15550001111"}
	h := startMachine(t, newFakeClient(""), wac)
	g.Eventually(h.cli.Calls, wait, tick).Should(Equal([]string{"connect"}))
	h.cli.events <- QRCodes{Codes: []string{"c1", "c2"}}
	g.Eventually(func() string { return h.pub.Last().PairingCode }, wait, tick).Should(Equal("ABCD-EFGH"))
	g.Expect(h.pub.Last().PairingCodeExpiresAt).NotTo(BeNil())
	g.Expect(h.pub.Last().QRCode).To(BeEmpty(), "PhoneCode publishes no QR")
}

func TestConnectedFillsDeviceAndClearsPairing(t *testing.T) {
	g := NewWithT(t)
	h := startMachine(t, newFakeClient(""), testConnection())
	h.cli.events <- QRCodes{Codes: []string{"c1"}}
	g.Eventually(func() string { return h.pub.Last().QRCode }, wait, tick).Should(Equal("c1"))
	h.cli.events <- PairSuccess{JID: "1555:1@s.whatsapp.net", Platform: "android"}
	h.cli.events <- Connected{JID: "1555:1@s.whatsapp.net", PushName: "Ann"}
	g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionConnected))
	last := h.pub.Last()
	g.Expect(last.JID).To(Equal("1555:1@s.whatsapp.net"))
	g.Expect(last.PushName).To(Equal("Ann"))
	g.Expect(last.Platform).To(Equal("android"))
	g.Expect(last.LastConnectedAt).NotTo(BeNil())
	g.Expect(last.QRCode).To(BeEmpty())
	g.Expect(h.m.connected.Load()).To(BeTrue())
}

func TestReconnectsAreCountedAndStopAtMaxAttempts(t *testing.T) {
	g := NewWithT(t)
	wac := testConnection()
	wac.Spec.Reconnect.MaxAttempts = 2
	h := startMachine(t, newFakeClient("1555:1@s.whatsapp.net"), wac)
	h.cli.events <- Connected{JID: "1555:1@s.whatsapp.net"}
	g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionConnected))

	h.cli.events <- Disconnected{}
	g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionDisconnected))
	g.Expect(h.m.shouldReconnect(errors.New("dial refused"))).To(BeTrue())
	g.Eventually(func() int32 { return h.pub.Last().ReconnectAttempts }, wait, tick).Should(BeEquivalentTo(1))
	g.Expect(h.m.shouldReconnect(errors.New("dial refused"))).To(BeFalse(), "the second failure reaches maxAttempts")
	g.Eventually(func() int32 { return h.pub.Last().ReconnectAttempts }, wait, tick).Should(BeEquivalentTo(2))
	g.Expect(h.pub.Last().Message).To(ContainSubstring("gave up"))

	// A later login starts the count afresh.
	h.cli.events <- Connected{JID: "1555:1@s.whatsapp.net"}
	g.Eventually(func() int32 { return h.pub.Last().ReconnectAttempts }, wait, tick).Should(BeZero())
	g.Expect(h.m.attempts.Load()).To(BeZero())
}

func TestStreamReplacedHaltsForGood(t *testing.T) {
	g := NewWithT(t)
	h := startMachine(t, newFakeClient("1555:1@s.whatsapp.net"), testConnection())
	h.cli.events <- Connected{JID: "1555:1@s.whatsapp.net"}
	g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionConnected))
	h.cli.events <- StreamReplaced{}
	g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionReplaced))
	g.Expect(h.cli.count("disconnect")).To(Equal(1))

	h.update(func(w *whatsappv1alpha1.WhatsAppConnection) {
		w.Annotations = map[string]string{whatsappv1alpha1.ReconnectRequestedAtAnnotation: "t1"}
	})
	g.Eventually(func() string { return h.pub.Last().LastHandledReconnectAt }, wait, tick).Should(Equal("t1"))
	g.Expect(h.cli.count("connect")).To(Equal(1), "a replaced session never connects again")
	g.Expect(h.pub.Last().State).To(Equal(whatsappv1alpha1.SessionReplaced))
}

func TestTemporaryBanRetriesOnceAfterExpiry(t *testing.T) {
	g := NewWithT(t)
	h := startMachine(t, newFakeClient("1555:1@s.whatsapp.net"), testConnection())
	g.Eventually(func() int { return h.cli.count("connect") }, wait, tick).Should(Equal(1))
	h.cli.events <- TemporaryBan{Code: "101", Expire: 100 * time.Millisecond}
	g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionTemporaryBan))
	g.Expect(h.pub.Last().BanExpiresAt).NotTo(BeNil())
	g.Expect(h.pub.Last().FailureCode).To(Equal("101"))
	g.Eventually(func() int { return h.cli.count("connect") }, wait, tick).Should(Equal(2))
	h.cli.events <- TemporaryBan{Code: "101", Expire: 100 * time.Millisecond}
	g.Consistently(func() int { return h.cli.count("connect") }, 400*time.Millisecond, tick).Should(Equal(2))
}

func TestTerminalFailuresHaltWithTheirState(t *testing.T) {
	for ev, want := range map[Event]whatsappv1alpha1.SessionState{
		ClientOutdated{}: whatsappv1alpha1.SessionClientOutdated,
		ConnectFailure{Code: "403", Message: "nope"}:        whatsappv1alpha1.SessionConnectFailure,
		LoggedOut{Reason: "logged out from another device"}: whatsappv1alpha1.SessionLoggedOut,
	} {
		t.Run(string(want), func(t *testing.T) {
			g := NewWithT(t)
			h := startMachine(t, newFakeClient("1555:1@s.whatsapp.net"), testConnection())
			h.cli.events <- Connected{JID: "1555:1@s.whatsapp.net"}
			h.cli.events <- ev
			g.Eventually(state(h.pub), wait, tick).Should(Equal(want))
			g.Expect(h.cli.count("disconnect")).To(Equal(1))
		})
	}
}

func TestLogoutRequestWipesAndPairsAgain(t *testing.T) {
	g := NewWithT(t)
	h := startMachine(t, newFakeClient("1555:1@s.whatsapp.net"), testConnection())
	h.cli.events <- Connected{JID: "1555:1@s.whatsapp.net"}
	g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionConnected))
	h.update(func(w *whatsappv1alpha1.WhatsAppConnection) {
		w.Annotations = map[string]string{whatsappv1alpha1.LogoutRequestedAtAnnotation: "l1"}
	})
	g.Eventually(func() int { return h.cli.count("logout") }, wait, tick).Should(Equal(1))
	g.Eventually(func() int { return h.cli.count("connect") }, wait, tick).Should(Equal(2), "a pairing window opens")
	g.Expect(h.pub.Last().LastHandledLogoutAt).To(Equal("l1"))
	g.Expect(h.pub.Last().JID).To(BeEmpty())
	h.cli.events <- QRCodes{Codes: []string{"n1"}}
	g.Eventually(func() string { return h.pub.Last().QRCode }, wait, tick).Should(Equal("n1"))
}

func TestDeletionLogsOutUnlessLogoutOnDeleteIsFalse(t *testing.T) {
	for _, logoutOnDelete := range []bool{true, false} {
		t.Run(map[bool]string{true: "logout", false: "keep"}[logoutOnDelete], func(t *testing.T) {
			g := NewWithT(t)
			h := startMachine(t, newFakeClient("1555:1@s.whatsapp.net"), testConnection())
			h.cli.events <- Connected{JID: "1555:1@s.whatsapp.net"}
			g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionConnected))
			h.update(func(w *whatsappv1alpha1.WhatsAppConnection) {
				w.DeletionTimestamp = ptr.To(metav1.Now())
				w.Spec.LogoutOnDelete = ptr.To(logoutOnDelete)
			})
			if logoutOnDelete {
				g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionLoggedOut))
				g.Expect(h.cli.count("connect")).To(Equal(1), "no pairing after a deletion logout")
			} else {
				g.Consistently(func() int { return h.cli.count("logout") }, 200*time.Millisecond, tick).Should(BeZero())
			}
		})
	}
}

func TestQRDrawingIsHalfBlocksStartingWithNewline(t *testing.T) {
	g := NewWithT(t)
	s, err := renderQR("2@abc,def,ghi,jkl")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s).To(HavePrefix("\n"))
	lines := strings.Split(s[1:], "\n")
	g.Expect(len(lines)).To(BeNumerically(">", 10))
	g.Expect(s).To(ContainSubstring("█"))
	g.Expect(strings.Trim(s, "\n █▀▄")).To(BeEmpty())
}

func TestConfigRejectsInvalidLeaseTimings(t *testing.T) {
	g := NewWithT(t)
	cfg := Config{ConnectionName: "a", Namespace: "b", PodName: "c", PodUID: "d", LeaseName: "e",
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 9 * time.Second}.withDefaults()
	g.Expect(cfg.validate()).To(MatchError(ContainSubstring("1.2 × retry-period")))
	cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod = 2500*time.Millisecond, 2*time.Second, time.Second
	g.Expect(cfg.validate()).To(MatchError(ContainSubstring("whole seconds")))
	cfg = Config{ConnectionName: "a", Namespace: "b", PodName: "c", PodUID: "d", LeaseName: "e"}.withDefaults()
	g.Expect(cfg.validate()).To(MatchError(ContainSubstring("REST config")))
}

// Start → QR in status: the first status write of a pairing window is the QR code itself, not a
// "Connecting" written (one API round trip) before the client even dials WhatsApp.
func TestTheFirstQRCodeIsThePairingWindowsFirstStatusWrite(t *testing.T) {
	g := NewWithT(t)
	h := startMachine(t, newFakeClient(""), testConnection())
	g.Eventually(h.cli.Calls, wait, tick).Should(Equal([]string{"connect"}))
	h.cli.events <- QRCodes{Codes: []string{"c1"}}
	g.Eventually(func() string { return h.pub.Last().QRCode }, wait, tick).Should(Equal("c1"))
	g.Expect(h.pub.States()).To(Equal([]whatsappv1alpha1.SessionState{whatsappv1alpha1.SessionPairing}))
}

// A window whose QR code does not come still says Connecting, within the retry tick.
func TestConnectingIsWrittenWhenNoQRCodeComes(t *testing.T) {
	g := NewWithT(t)
	h := startMachine(t, newFakeClient(""), testConnection())
	g.Eventually(state(h.pub), wait, tick).Should(Equal(whatsappv1alpha1.SessionConnecting))
}
