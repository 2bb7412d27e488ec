package session

import (
	"net/http/httptest"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// The hand-written exposition must read as Prometheus reads it: the scraper's own parser, the
// content type, and the values the session set.
func TestMetricsAreValidPrometheusText(t *testing.T) {
	g := NewWithT(t)
	m := newMetrics()
	m.setState(whatsappv1alpha1.SessionConnected)
	m.qrCodes.Inc()
	m.qrCodes.Inc()
	m.leaseTransitions.WithLabelValues("acquired").Inc()
	m.leaseWrites.Inc()

	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	g.Expect(rec.Header().Get("Content-Type")).To(Equal("text/plain; version=0.0.4; charset=utf-8"))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	g.Expect(err).NotTo(HaveOccurred(), rec.Body.String())

	g.Expect(fams).To(HaveKey("whatsapp_session_reconnects_total"), "a counter never incremented is still exported, at 0")
	g.Expect(fams["whatsapp_session_reconnects_total"].GetMetric()[0].GetCounter().GetValue()).To(BeZero())
	g.Expect(fams["whatsapp_session_connected"].GetMetric()[0].GetGauge().GetValue()).To(Equal(1.0))
	g.Expect(fams["whatsapp_session_qr_codes_total"].GetMetric()[0].GetCounter().GetValue()).To(Equal(2.0))
	g.Expect(fams["whatsapp_session_lease_writes_total"].GetHelp()).To(ContainSubstring("Lease writes"))
	states := map[string]float64{}
	for _, s := range fams["whatsapp_session_state"].GetMetric() {
		g.Expect(s.GetLabel()).To(HaveLen(1))
		g.Expect(s.GetLabel()[0].GetName()).To(Equal("state"))
		states[s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
	}
	g.Expect(states).To(HaveLen(len(allStates)))
	g.Expect(states).To(HaveKeyWithValue("Connected", 1.0))
	g.Expect(states).To(HaveKeyWithValue("Pairing", 0.0))
	lt := fams["whatsapp_session_lease_transitions_total"].GetMetric()
	g.Expect(lt).To(HaveLen(1))
	g.Expect(lt[0].GetLabel()[0].GetValue()).To(Equal("acquired"))
	g.Expect(lt[0].GetCounter().GetValue()).To(Equal(1.0))
}
