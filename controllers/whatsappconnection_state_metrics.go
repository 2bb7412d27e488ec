package controllers

import (
	"context"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// The manager exports each resource's conditions and phase itself, from the WhatsAppConnections
// its cache already holds. No monitoring agent then needs read access to WhatsAppConnections,
// which would let it read every QR code while a device pairs (RBAC has no per-field rules).
var (
	connectionConditionDesc = prometheus.NewDesc("whatsapp_operator_connection_condition",
		"1 while the WhatsAppConnection's condition of this type is True, else 0.",
		[]string{"namespace", "name", "type", "reason"}, nil)
	connectionPhaseDesc = prometheus.NewDesc("whatsapp_operator_connection_phase",
		"1 for the WhatsAppConnection's current phase, 0 for the others.",
		[]string{"namespace", "name", "phase"}, nil)
)

const (
	// stateScrapeTimeout bounds one scrape's wait for the cache (it waits only before the
	// WhatsAppConnection informer has synced); well inside Prometheus' default 10 s.
	stateScrapeTimeout = 3 * time.Second
	// maxExportedConditions caps the series of one resource: the controller and the session
	// write about six conditions, but anyone with status write access could add more.
	maxExportedConditions = 16
	// invalidReason replaces a reason that is not a short CamelCase word, so that no free text
	// written into a status becomes a label value.
	invalidReason = "Invalid"
)

// conditionWord is what the controller and session write as condition types and reasons: one
// CamelCase word. The CRD alone allows longer reasons with punctuation.
var conditionWord = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,63}$`)

// connectionStateCollector reads the cached WhatsAppConnections at scrape time: the work is
// one pass over the cache, no API call, and a deleted resource's series are gone with it.
// Label values come only from names, condition types and reasons (validated) and the phase
// enum: never from messages, the QR code or anything else a status may hold.
type connectionStateCollector struct {
	cache client.Reader
}

// newConnectionStateCollector reads WhatsAppConnections from reader, the manager's cache.
func newConnectionStateCollector(reader client.Reader) prometheus.Collector {
	return &connectionStateCollector{cache: reader}
}

func (c *connectionStateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connectionConditionDesc
	ch <- connectionPhaseDesc
}

func (c *connectionStateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), stateScrapeTimeout)
	defer cancel()
	list := &whatsappv1alpha1.WhatsAppConnectionList{}
	// Read-only use of the cached objects: no copy of every resource per scrape.
	if err := c.cache.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		// No series rather than a failed scrape: the manager's other metrics still matter.
		logf.Log.WithName("metrics").V(1).Info("connection state not exported", "error", err.Error())
		return
	}
	for i := range list.Items {
		for _, m := range connectionStateMetrics(&list.Items[i]) {
			ch <- m
		}
	}
}

// connectionStateMetrics are one resource's series: one per condition (at most
// maxExportedConditions, invalid types skipped) and one per known phase.
func connectionStateMetrics(wac *whatsappv1alpha1.WhatsAppConnection) []prometheus.Metric {
	out := make([]prometheus.Metric, 0, len(whatsappv1alpha1.Phases)+len(wac.Status.Conditions))
	exported := 0
	for _, cond := range wac.Status.Conditions {
		if exported == maxExportedConditions {
			break
		}
		if !conditionWord.MatchString(cond.Type) {
			continue
		}
		reason := cond.Reason
		if !conditionWord.MatchString(reason) {
			reason = invalidReason
		}
		out = append(out, prometheus.MustNewConstMetric(connectionConditionDesc, prometheus.GaugeValue,
			boolValue(cond.Status == metav1.ConditionTrue), wac.Namespace, wac.Name, cond.Type, reason))
		exported++
	}
	for _, phase := range whatsappv1alpha1.Phases {
		out = append(out, prometheus.MustNewConstMetric(connectionPhaseDesc, prometheus.GaugeValue,
			boolValue(wac.Status.Phase == phase), wac.Namespace, wac.Name, string(phase)))
	}
	return out
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
