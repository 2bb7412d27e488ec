package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// reconcilePasses counts reconcile passes per resource: a resource that keeps the controller
// busy shows up here, and a halted one must not.
var reconcilePasses = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "whatsapp_operator_reconcile_passes_total",
	Help: "Reconcile passes per WhatsAppConnection.",
}, []string{"namespace", "name"})

// forgetMetrics removes a deleted resource's series, so that a namespace's churn does not grow
// the manager's memory and /metrics without bound.
func forgetMetrics(namespace, name string) {
	reconcilePasses.DeleteLabelValues(namespace, name)
}

func init() {
	metrics.Registry.MustRegister(reconcilePasses)
}
