package plugin_test

import (
	"bytes"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/plugin"
	"github.com/waoperator/whatsapp-operator/internal/testutil"
)

var _ = Describe("pair", func() {
	var t plugin.Target

	BeforeEach(func() {
		t = newConnection(newNamespace(), "sales", whatsappv1alpha1.PairingSpec{})
	})

	It("rejects a number that is not E.164 without changing anything", func() {
		err := plugin.Pair(ctx, t, "0155 555 0123", &bytes.Buffer{}, plugin.WaitOptions{})
		Expect(err).To(MatchError(ContainSubstring("E.164")))
		Expect(get(t).Spec.Pairing.Method).To(Equal(whatsappv1alpha1.PairingMethodQR))
	})

	It("switches to PhoneCode and prints the new code, not the one already in status", func() {
		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing, PairingCode: "OLDC-ODE1"})
		out := &testutil.SyncBuffer{}
		done := run(func() error {
			return plugin.Pair(ctx, t, "+14155550123", out, plugin.WaitOptions{PollInterval: poll, Timeout: 30 * time.Second})
		})
		Eventually(func() whatsappv1alpha1.PairingSpec { return get(t).Spec.Pairing }).Should(Equal(whatsappv1alpha1.PairingSpec{
			Method: whatsappv1alpha1.PairingMethodPhoneCode, PhoneNumber: "+14155550123"}))
		Consistently(done, 3*poll).ShouldNot(Receive())

		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing, PairingCode: "ABCD-EFGH"})
		Eventually(done).Should(Receive(BeNil()))
		Expect(out.String()).To(ContainSubstring("Pairing code: ABCD-EFGH"))
		Expect(out.String()).NotTo(ContainSubstring("OLDC-ODE1"))
	})

	It("with --watch prints each new code and ends on Connected", func() {
		out := &testutil.SyncBuffer{}
		done := run(func() error {
			return plugin.Pair(ctx, t, "+14155550123", out, plugin.WaitOptions{Watch: true, PollInterval: poll, Timeout: 30 * time.Second})
		})
		Eventually(func() whatsappv1alpha1.PairingMethod { return get(t).Spec.Pairing.Method }).Should(Equal(whatsappv1alpha1.PairingMethodPhoneCode))
		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing, PairingCode: "AAAA-1111"})
		Eventually(out.String).Should(ContainSubstring("Pairing code: AAAA-1111"))
		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing, PairingCode: "BBBB-2222"})
		Eventually(out.String).Should(ContainSubstring("Pairing code: BBBB-2222"))
		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionConnected, JID: "14155550123:3@s.whatsapp.net"})
		Eventually(done).Should(Receive(BeNil()))
		Expect(out.String()).To(HaveSuffix("Connected as 14155550123:3@s.whatsapp.net.\n"))
	})

	It("times out when no code comes", func() {
		err := plugin.Pair(ctx, t, "+14155550123", &bytes.Buffer{}, plugin.WaitOptions{PollInterval: poll, Timeout: 300 * time.Millisecond})
		Expect(err).To(MatchError(ContainSubstring("timed out after 300ms waiting for a pairing code")))
	})

	It("refuses to pair a connected device", func() {
		reportAsSession(t, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionConnected, JID: "1:1@s.whatsapp.net"})
		err := plugin.Pair(ctx, t, "+14155550123", &bytes.Buffer{}, plugin.WaitOptions{})
		Expect(err).To(MatchError(ContainSubstring("kubectl whatsapp logout sales")))
		Expect(get(t).Spec.Pairing.Method).To(Equal(whatsappv1alpha1.PairingMethodQR))
	})
})
