package plugin_test

import (
	"bytes"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/plugin"
)

var _ = Describe("status, reconnect and logout", func() {
	var ns string
	var support, sales plugin.Target

	BeforeEach(func() {
		ns = newNamespace()
		support = newConnection(ns, "support", whatsappv1alpha1.PairingSpec{})
		sales = newConnection(ns, "sales", whatsappv1alpha1.PairingSpec{
			Method: whatsappv1alpha1.PairingMethodPhoneCode, PhoneNumber: "+14155550123"})
		reportAsController(support, whatsappv1alpha1.PhaseConnected, "14155550100",
			condition(whatsappv1alpha1.ConditionReady, metav1.ConditionTrue, whatsappv1alpha1.ReasonAsExpected, "connected"))
		reportAsSession(support, whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionConnected,
			JID: "14155550100:2@s.whatsapp.net", PushName: "Support"})
		reportAsController(sales, whatsappv1alpha1.PhaseConflict, "",
			condition(whatsappv1alpha1.ConditionReady, metav1.ConditionFalse, whatsappv1alpha1.ReasonStreamReplaced, "halted"),
			condition(whatsappv1alpha1.ConditionConflict, metav1.ConditionTrue, whatsappv1alpha1.ReasonStreamReplaced,
				"another client logged in\nwith the same keys"))
	})

	It("lists phase, account, readiness and the most telling message", func() {
		var out bytes.Buffer
		Expect(plugin.StatusList(ctx, k8sClient, ns, &out)).To(Succeed())
		Expect(out.String()).To(MatchRegexp(`(?m)^NAME +PHASE +ACCOUNT +READY +MESSAGE\n` +
			`sales +Conflict +- +False +another client logged in with the same keys\n` +
			`support +Connected +14155550100 +True +connected\n\z`))
	})

	It("adds the namespace when listing every namespace", func() {
		var out bytes.Buffer
		Expect(plugin.StatusList(ctx, k8sClient, "", &out)).To(Succeed())
		Expect(out.String()).To(MatchRegexp(`(?m)^NAMESPACE +NAME +PHASE`))
		Expect(out.String()).To(MatchRegexp(`(?m)^` + ns + ` +support +Connected`))
	})

	It("says so when there is nothing to list", func() {
		var out bytes.Buffer
		Expect(plugin.StatusList(ctx, k8sClient, newNamespace(), &out)).To(Succeed())
		Expect(out.String()).To(HavePrefix("No WhatsAppConnections found"))
	})

	It("details one resource with its conditions", func() {
		var out bytes.Buffer
		Expect(plugin.StatusOne(ctx, sales, &out)).To(Succeed())
		Expect(out.String()).To(MatchRegexp(`(?m)^Phase: +Conflict$`))
		Expect(out.String()).To(MatchRegexp(`(?m)^Pairing: +PhoneCode \+14155550123$`))
		Expect(out.String()).To(MatchRegexp(`(?m)^  Conflict +True +StreamReplaced +\S+ ago +another client logged in with the same keys$`))

		out.Reset()
		Expect(plugin.StatusOne(ctx, support, &out)).To(Succeed())
		Expect(out.String()).To(MatchRegexp(`(?m)^JID: +14155550100:2@s.whatsapp.net$`))
		Expect(out.String()).To(MatchRegexp(`(?m)^Push name: +Support$`))
	})

	It("requests a reconnect and a logout with fresh RFC 3339 tokens", func() {
		now := time.Now()
		Expect(plugin.Reconnect(ctx, sales, &bytes.Buffer{}, now)).To(Succeed())
		first := get(sales).Annotations[whatsappv1alpha1.ReconnectRequestedAtAnnotation]
		parsed, err := time.Parse(time.RFC3339, first)
		Expect(err).NotTo(HaveOccurred())
		Expect(parsed.Equal(now)).To(BeTrue())

		// A second request within the same second must still be a new token.
		Expect(plugin.Reconnect(ctx, sales, &bytes.Buffer{}, now.Add(time.Millisecond))).To(Succeed())
		Expect(get(sales).Annotations[whatsappv1alpha1.ReconnectRequestedAtAnnotation]).NotTo(Equal(first))

		var out bytes.Buffer
		Expect(plugin.Logout(ctx, support, &out, now)).To(Succeed())
		Expect(get(support).Annotations).To(HaveKeyWithValue(whatsappv1alpha1.LogoutRequestedAtAnnotation, first))
		Expect(get(support).Annotations).NotTo(HaveKey(whatsappv1alpha1.ReconnectRequestedAtAnnotation))
		Expect(out.String()).To(ContainSubstring("Logout of " + ns + "/support requested"))
	})

	It("reports a missing resource", func() {
		err := plugin.Reconnect(ctx, plugin.Target{Client: k8sClient, Namespace: ns, Name: "nope"}, &bytes.Buffer{}, time.Now())
		Expect(err).To(MatchError(ContainSubstring("not found")))
	})
})
