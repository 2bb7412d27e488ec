package controllers

import (
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

// firstReportWait is how long a new resource's first status waits for its session's first
// report once the pod is on a node.
//
// The controller's status write is a server-side apply, among the API server's costliest requests
// (~12 ms of its CPU each, 20 resources applied at once: a tenth of its work before their QR
// codes). Written while the session starts, phase Pending is overwritten a few hundred
// milliseconds later by the phase the session's report gives (Pairing, Connecting), and the
// write competes with every other session's start for the API server. Waiting for that report
// makes the first status write the one that says Pairing. A pod that is not on a node yet (no
// scheduler, no room) gets Pending at once, and a session that does not report within the wait
// gets it then: the wait only ever delays a status that the session's own report is about to
// replace.
const firstReportWait = 3 * time.Second

// awaitFirstReport says how much longer the pass should leave the status unwritten (0: write
// it now): a new resource (no phase yet) whose bound, live pod's session has not reported, with
// nothing else to say (no halt, no wait of the controller's own).
func (r *WhatsAppConnectionReconciler) awaitFirstReport(p *pass) time.Duration {
	if p.wac.Status.Phase != "" || p.conflict != nil || p.degraded != nil || p.suspended || p.waiting != nil {
		return 0
	}
	pod := p.pod
	if pod == nil || pod.Spec.NodeName == "" || !pod.DeletionTimestamp.IsZero() || p.trustedConnection() != nil {
		return 0
	}
	// creationTimestamp has whole seconds: the wait may be up to a second longer.
	return max(0, firstReportWait-r.now().Sub(pod.CreationTimestamp.Time))
}

// sooner is res, requeued after d at the latest.
func sooner(res ctrl.Result, d time.Duration) ctrl.Result {
	if res.RequeueAfter == 0 || d < res.RequeueAfter {
		res.RequeueAfter = d
	}
	return res
}
