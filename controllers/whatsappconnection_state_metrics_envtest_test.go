//go:build !unit

package controllers

import (
	"net/http"
	"net/http/httptest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// The manager's condition and phase metrics on the envtest suite; the label rules themselves are
// table-tested in whatsappconnection_state_metrics_test.go.
var _ = Describe("condition and phase metrics", func() {
	It("are exported by the manager per resource, never carry the QR code, and go with the resource", func() {
		const qr = "2@state-metrics-qr-payload,never-a-label"
		pairing, banned := newNamespace(), newNamespace()
		// The same name in both namespaces: only the namespace label tells them apart.
		newConnection(pairing, "shop")
		newConnection(banned, "shop")
		reportAsSession(pairing, "shop", sessionPod(pairing, "shop"), whatsappv1alpha1.ConnectionStatus{
			State: whatsappv1alpha1.SessionPairing, QRCode: qr, QRCodeTerminal: "\n" + qr})
		reportAsSession(banned, "shop", sessionPod(banned, "shop"), whatsappv1alpha1.ConnectionStatus{
			State: whatsappv1alpha1.SessionTemporaryBan, Message: "banned for 3600 s"})
		Eventually(phaseOf(pairing, "shop"), 10*time.Second).Should(Equal(whatsappv1alpha1.PhasePairing))
		Eventually(phaseOf(banned, "shop"), 10*time.Second).Should(Equal(whatsappv1alpha1.PhaseDegraded))
		Expect(get(pairing, "shop").Status.Connection.QRCode).To(Equal(qr), "the QR is in the resource the manager caches")

		// The manager's cache lags the API server a little.
		var page string
		Eventually(func(g Gomega) {
			page = scrapeManager(g)
			s := stateSeries(page)
			for _, phase := range whatsappv1alpha1.Phases {
				want := 0.0
				if phase == whatsappv1alpha1.PhasePairing {
					want = 1
				}
				g.Expect(s).To(HaveKeyWithValue(phaseSeries(pairing, "shop", phase), want))
			}
			g.Expect(s).To(HaveKeyWithValue(phaseSeries(banned, "shop", whatsappv1alpha1.PhaseDegraded), 1.0))
			g.Expect(s).To(HaveKeyWithValue(phaseSeries(banned, "shop", whatsappv1alpha1.PhasePairing), 0.0))
			g.Expect(s).To(HaveKeyWithValue(conditionSeries(banned, "shop", whatsappv1alpha1.ConditionDegraded, whatsappv1alpha1.ReasonTemporaryBan), 1.0))
			g.Expect(s).To(HaveKeyWithValue(conditionSeries(banned, "shop", whatsappv1alpha1.ConditionReady, whatsappv1alpha1.ReasonTemporaryBan), 0.0))
			g.Expect(s).To(HaveKeyWithValue(conditionSeries(pairing, "shop", whatsappv1alpha1.ConditionPaired, whatsappv1alpha1.ReasonNotPaired), 0.0))
			g.Expect(s).To(HaveKeyWithValue(conditionSeries(pairing, "shop", whatsappv1alpha1.ConditionDegraded, whatsappv1alpha1.ReasonAsExpected), 0.0))
			g.Expect(s).To(HaveKeyWithValue(conditionSeries(pairing, "shop", whatsappv1alpha1.ConditionConflict, whatsappv1alpha1.ReasonNoConflict), 0.0))
		}, 10*time.Second).Should(Succeed())
		Expect(page).NotTo(ContainSubstring("state-metrics-qr-payload"), "the QR code is in no label value")
		Expect(page).NotTo(ContainSubstring("banned for 3600"), "no message is a label value")

		Expect(k8sClient.Delete(ctx, get(pairing, "shop"))).To(Succeed())
		Eventually(func(g Gomega) {
			s := stateSeries(scrapeManager(g))
			for key := range s {
				g.Expect(key).NotTo(ContainSubstring(`namespace="`+pairing+`"`), "a deleted resource's series are gone")
			}
			g.Expect(s).To(HaveKey(phaseSeries(banned, "shop", whatsappv1alpha1.PhaseDegraded)), "the other namespace's resource stays")
		}, 3*testLogoutTimeout).Should(Succeed())
	})
})

// scrapeManager reads what the manager's /metrics serves: controller-runtime's metrics server
// serves metrics.Registry with this handler (behind authentication, which is not under test).
func scrapeManager(g Gomega) string {
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}).
		ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	g.Expect(rec.Code).To(Equal(http.StatusOK), rec.Body.String())
	return rec.Body.String()
}
