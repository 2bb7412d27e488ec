package plugin_test

import (
	"bytes"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/plugin"
	"github.com/waoperator/whatsapp-operator/internal/testutil"
)

var _ = Describe("qr", func() {
	var t plugin.Target

	BeforeEach(func() {
		t = newConnection(newNamespace(), "support", whatsappv1alpha1.PairingSpec{})
	})

	It("says to wait when there is no code yet", func() {
		err := plugin.QR(ctx, t, &bytes.Buffer{}, plugin.WaitOptions{})
		Expect(err).To(MatchError(ContainSubstring("no QR code yet")))
		Expect(err).To(MatchError(ContainSubstring("--watch")))
	})

	It("prints the session's drawing of the code and when it expires", func() {
		exp := metav1.NewTime(time.Now().Add(20 * time.Second))
		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing,
			QRCode: "2@abc", QRCodeTerminal: "\n[drawing-one]", QRExpiresAt: &exp})
		var out bytes.Buffer
		Expect(plugin.QR(ctx, t, &out, plugin.WaitOptions{})).To(Succeed())
		Expect(out.String()).To(ContainSubstring("Linked devices"))
		Expect(out.String()).To(ContainSubstring("[drawing-one]\n"))
		Expect(out.String()).To(ContainSubstring("Expires at " + exp.Local().Format(time.TimeOnly)))
	})

	It("draws the code itself when the session gave only the payload", func() {
		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing, QRCode: "2@payload"})
		var out bytes.Buffer
		Expect(plugin.QR(ctx, t, &out, plugin.WaitOptions{})).To(Succeed())
		Expect(out.String()).To(Or(ContainSubstring("█"), ContainSubstring("▀")))
		Expect(strings.Count(out.String(), "\n")).To(BeNumerically(">", 10))
	})

	It("redraws the code on rotation with --watch and ends on Connected with the JID", func() {
		out := &testutil.SyncBuffer{}
		done := run(func() error {
			return plugin.QR(ctx, t, out, plugin.WaitOptions{Watch: true, PollInterval: poll, Timeout: 30 * time.Second})
		})
		Eventually(out.String).Should(ContainSubstring("Waiting: phase -"))

		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing,
			QRCode: "2@one", QRCodeTerminal: "\n[drawing-one]"})
		Eventually(out.String).Should(ContainSubstring("[drawing-one]"))

		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing,
			QRCode: "2@two", QRCodeTerminal: "\n[drawing-two]"})
		Eventually(out.String).Should(ContainSubstring("[drawing-two]"))
		Consistently(done, 3*poll).ShouldNot(Receive())

		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionConnected,
			JID: "14155550123:7@s.whatsapp.net"})
		Eventually(done).Should(Receive(BeNil()))
		Expect(out.String()).To(HaveSuffix("Connected as 14155550123:7@s.whatsapp.net.\n"))
		// Each code is drawn once, not once per poll.
		Expect(strings.Count(out.String(), "[drawing-one]")).To(Equal(1))
		Expect(strings.Count(out.String(), "[drawing-two]")).To(Equal(1))
	})

	It("stops watching with the reason and the way out when the connection is halted", func() {
		done := run(func() error {
			return plugin.QR(ctx, t, &testutil.SyncBuffer{}, plugin.WaitOptions{Watch: true, PollInterval: poll, Timeout: 30 * time.Second})
		})
		reportAsController(t, whatsappv1alpha1.PhaseDegraded, "",
			condition(whatsappv1alpha1.ConditionDegraded, metav1.ConditionTrue, whatsappv1alpha1.ReasonPairingTimeout, "nobody scanned the code"))
		var err error
		Eventually(done).Should(Receive(&err))
		Expect(err).To(MatchError(ContainSubstring("nobody scanned the code")))
		Expect(err).To(MatchError(ContainSubstring("kubectl whatsapp reconnect support")))
	})

	It("keeps the QR on screen through halts that lift by themselves (another account's phone, a ban)", func() {
		out := &testutil.SyncBuffer{}
		done := run(func() error {
			return plugin.QR(ctx, t, out, plugin.WaitOptions{Watch: true, PollInterval: poll, Timeout: 30 * time.Second})
		})
		// The session logged the other account's device out and shows a new code.
		reportAsController(t, whatsappv1alpha1.PhaseConflict, "",
			condition(whatsappv1alpha1.ConditionConflict, metav1.ConditionTrue, whatsappv1alpha1.ReasonUnexpectedAccount, "another account scanned"))
		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing,
			QRCode: "2@after-rogue", QRCodeTerminal: "\n[drawing-after-rogue]"})
		Eventually(out.String).Should(ContainSubstring("[drawing-after-rogue]"))
		Consistently(done, 3*poll).ShouldNot(Receive())
		// The session tries again when the ban ends.
		reportAsController(t, whatsappv1alpha1.PhaseDegraded, "",
			condition(whatsappv1alpha1.ConditionConflict, metav1.ConditionFalse, whatsappv1alpha1.ReasonNoConflict, ""),
			condition(whatsappv1alpha1.ConditionDegraded, metav1.ConditionTrue, whatsappv1alpha1.ReasonTemporaryBan, "banned until noon"))
		Consistently(done, 3*poll).ShouldNot(Receive())

		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionConnected,
			JID: "14155550123:7@s.whatsapp.net"})
		Eventually(done).Should(Receive(BeNil()))
	})

	It("gives up after --timeout", func() {
		err := plugin.QR(ctx, t, &bytes.Buffer{}, plugin.WaitOptions{Watch: true, PollInterval: poll, Timeout: 300 * time.Millisecond})
		Expect(err).To(MatchError(ContainSubstring("timed out after 300ms waiting for " + t.Namespace + "/support to connect")))
	})

	It("points a PhoneCode connection at pair", func() {
		pc := newConnection(t.Namespace, "sales", whatsappv1alpha1.PairingSpec{
			Method: whatsappv1alpha1.PairingMethodPhoneCode, PhoneNumber: "+14155550123"})
		err := plugin.QR(ctx, pc, &bytes.Buffer{}, plugin.WaitOptions{})
		Expect(err).To(MatchError(ContainSubstring("kubectl whatsapp pair sales --phone +14155550123")))
	})
})
