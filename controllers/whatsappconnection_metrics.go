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

func init() {
	metrics.Registry.MustRegister(reconcilePasses)
}
