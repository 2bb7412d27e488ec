package controllers

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

var sampleLine = regexp.MustCompile(`^(whatsapp_operator_connection_\w+\{[^}]*\}) (\S+)$`)

// stateSeries maps each connection state series of a text exposition to its value.
func stateSeries(page string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(page, "\n") {
		if m := sampleLine.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64) // the format's values always parse
			out[m[1]] = v
		}
	}
	return out
}

// phaseSeries and conditionSeries spell a series as the text format does (labels sorted).
func phaseSeries(ns, name string, phase whatsappv1alpha1.Phase) string {
	return `whatsapp_operator_connection_phase{name="` + name + `",namespace="` + ns + `",phase="` + string(phase) + `"}`
}

func conditionSeries(ns, name, typ, reason string) string {
	return `whatsapp_operator_connection_condition{name="` + name + `",namespace="` + ns + `",reason="` + reason + `",type="` + typ + `"}`
}

// TestConnectionStateMetricsLabels: label values are bounded whatever a status holds.
func TestConnectionStateMetricsLabels(t *testing.T) {
	long := strings.Repeat("A", 65)
	cases := map[string]struct {
		cond       metav1.Condition
		wantType   string // "" when the condition must not be exported
		wantReason string
		wantValue  float64
	}{
		"True condition":         {metav1.Condition{Type: "Conflict", Status: metav1.ConditionTrue, Reason: "DuplicateDevice"}, "Conflict", "DuplicateDevice", 1},
		"False condition":        {metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: "Pairing"}, "Ready", "Pairing", 0},
		"Unknown condition":      {metav1.Condition{Type: "Paired", Status: metav1.ConditionUnknown, Reason: "SessionPodPending"}, "Paired", "SessionPodPending", 0},
		"reason with text":       {metav1.Condition{Type: "Degraded", Status: metav1.ConditionTrue, Reason: "Bad,reason:2@qr"}, "Degraded", invalidReason, 1},
		"reason too long":        {metav1.Condition{Type: "Degraded", Status: metav1.ConditionTrue, Reason: long}, "Degraded", invalidReason, 1},
		"type with a domain":     {metav1.Condition{Type: "example.com/Thing", Status: metav1.ConditionTrue, Reason: "X"}, "", "", 0},
		"type too long":          {metav1.Condition{Type: long, Status: metav1.ConditionTrue, Reason: "X"}, "", "", 0},
		"longest valid reason":   {metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: long[:64]}, "Ready", long[:64], 1},
		"reason starting with 1": {metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "1Reason"}, "Ready", invalidReason, 1},
	}
	for name, c := range cases {
		wac := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "shop"}}
		wac.Status.Phase = whatsappv1alpha1.PhaseConflict
		wac.Status.Conditions = []metav1.Condition{c.cond}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(constCollector(connectionStateMetrics(wac)))
		page := gatherText(t, reg)
		s := stateSeries(page)
		conds := 0
		for key := range s {
			if strings.HasPrefix(key, "whatsapp_operator_connection_condition{") {
				conds++
			}
		}
		if c.wantType == "" {
			if conds != 0 {
				t.Errorf("%s: exported %d condition series, want none:\n%s", name, conds, page)
			}
		} else if v, ok := s[conditionSeries("ns", "shop", c.wantType, c.wantReason)]; !ok || v != c.wantValue || conds != 1 {
			t.Errorf("%s: want one series type=%s reason=%s value %v, got:\n%s", name, c.wantType, c.wantReason, c.wantValue, page)
		}
		if s[phaseSeries("ns", "shop", whatsappv1alpha1.PhaseConflict)] != 1 || len(s)-conds != len(whatsappv1alpha1.Phases) {
			t.Errorf("%s: want one phase series per phase, Conflict at 1:\n%s", name, page)
		}
	}

	// However many conditions a status holds, a resource's series stay few.
	wac := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "shop"}}
	for i := range 100 {
		wac.Status.Conditions = append(wac.Status.Conditions, metav1.Condition{Type: "T" + strconv.Itoa(i), Status: metav1.ConditionTrue, Reason: "R"})
	}
	if got, want := len(connectionStateMetrics(wac)), maxExportedConditions+len(whatsappv1alpha1.Phases); got != want {
		t.Errorf("%d series for 100 conditions, want %d", got, want)
	}
}

// constCollector serves fixed metrics, to check them through a pedantic registry.
type constCollector []prometheus.Metric

func (c constCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connectionConditionDesc
	ch <- connectionPhaseDesc
}

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}

func gatherText(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}).
		ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("gathering: %d %s", rec.Code, rec.Body.String())
	}
	return rec.Body.String()
}
