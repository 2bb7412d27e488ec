package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

func TestFirstStatusWaitsOnlyForABoundSessionThatHasNotReported(t *testing.T) {
	created := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	r := &WhatsAppConnectionReconciler{Clock: clocktesting.NewFakePassiveClock(created.Add(500 * time.Millisecond))}
	boundPod := func() *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "shop-session", UID: "u1", CreationTimestamp: metav1.Time{Time: created}},
			Spec: corev1.PodSpec{NodeName: "node-1"}}
	}
	newPassWith := func(change func(*pass)) *pass {
		p := newPass(&whatsappv1alpha1.WhatsAppConnection{})
		p.pod = boundPod()
		if change != nil {
			change(p)
		}
		return p
	}
	report := func(p *pass) {
		p.wac.Status.Connection = &whatsappv1alpha1.ConnectionStatus{State: whatsappv1alpha1.SessionPairing,
			Holder: &whatsappv1alpha1.Holder{Pod: "shop-session", UID: "u1"}}
	}
	for _, tc := range []struct {
		name   string
		change func(*pass)
		want   time.Duration
	}{
		{"a new resource whose bound session has not reported waits out the rest", nil, firstReportWait - 500*time.Millisecond},
		{"the session reported: write its phase now", report, 0},
		{"a report of an earlier pod says nothing of this one", func(p *pass) { report(p); p.wac.Status.Connection.Holder.UID = "u0" }, firstReportWait - 500*time.Millisecond},
		{"a pod on no node yet (no scheduler, no room): Pending now", func(p *pass) { p.pod.Spec.NodeName = "" }, 0},
		{"no pod", func(p *pass) { p.pod = nil }, 0},
		{"a status written before: keep it current", func(p *pass) { p.wac.Status.Phase = whatsappv1alpha1.PhasePending }, 0},
		{"a halt to report", func(p *pass) { p.conflict = &verdict{"ResourceNotOwned", "x"} }, 0},
		{"a wait of the controller's own to report", func(p *pass) { p.waiting = &verdict{whatsappv1alpha1.ReasonWaitingForPod, "x"} }, 0},
		{"suspended", func(p *pass) { p.suspended = true }, 0},
		{"a pod on its way out", func(p *pass) { p.pod.DeletionTimestamp = &metav1.Time{Time: created} }, 0},
		{"the wait is over", func(p *pass) { p.pod.CreationTimestamp.Time = created.Add(-firstReportWait) }, 0},
	} {
		if got := r.awaitFirstReport(newPassWith(tc.change)); got != tc.want {
			t.Errorf("%s: awaitFirstReport = %s, want %s", tc.name, got, tc.want)
		}
	}
}
