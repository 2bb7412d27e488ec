package controllers

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

func TestConnectionForMapsOnlyExpectedNames(t *testing.T) {
	cases := map[string]struct {
		name, suffix string
		want         string
		ok           bool
	}{
		"session object": {"shop-session", sessionSuffix, "shop", true},
		"store claim":    {"shop-store", storeSuffix, "shop", true},
		"other object":   {"shop-db", sessionSuffix, "", false},
		"suffix alone":   {"-session", sessionSuffix, "", false},
		"nested suffix":  {"a-session-session", sessionSuffix, "a-session", true},
	}
	for name, c := range cases {
		got, ok := connectionFor("ns", c.name, c.suffix)
		if ok != c.ok || (ok && got != (types.NamespacedName{Namespace: "ns", Name: c.want})) {
			t.Errorf("%s: connectionFor(%q) = %v, %v; want %q, %v", name, c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestOlderThanIsATotalOrder(t *testing.T) {
	at := func(ns, name string, sec int64) *whatsappv1alpha1.WhatsAppConnection {
		return &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, CreationTimestamp: metav1.Unix(sec, 0)}}
	}
	early, late := at("z", "z", 1), at("a", "a", 2)
	if !olderThan(early, late) || olderThan(late, early) {
		t.Error("creation time decides first")
	}
	a, b := at("ns", "a", 5), at("ns", "b", 5)
	if !olderThan(a, b) || olderThan(b, a) {
		t.Error("on a tie, namespace/name decides, and exactly one of two wins")
	}
}

// The controller judges another machine's Lease by its own clock only: renewTime, written by
// the holder's node, is never compared with it.
func TestLeaseExpiresInCountsOnlyThisClock(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(now)
	r := &WhatsAppConnectionReconciler{Clock: clk}
	lease := func(holder string, renewed time.Time) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "x-session"}, Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(holder),
			LeaseDurationSeconds: ptr.To[int32](15),
			RenewTime:            &metav1.MicroTime{Time: renewed},
		}}
	}
	// Written by a node whose clock is an hour behind: a renewTime comparison would call it
	// long expired. First seen now, it has its whole duration ahead.
	old := lease("p_1", now.Add(-time.Hour))
	if got := r.leaseExpiresIn(old); got != 15*time.Second {
		t.Errorf("first sight of a record: %v left, want the whole 15s", got)
	}
	clk.SetTime(now.Add(10 * time.Second))
	if got := r.leaseExpiresIn(old); got != 5*time.Second {
		t.Errorf("same record 10s later: %v left, want 5s", got)
	}
	// A renewal, even one stamped in this clock's future, starts the count again.
	renewed := lease("p_1", now.Add(time.Hour))
	if got := r.leaseExpiresIn(renewed); got != 15*time.Second {
		t.Errorf("renewed record: %v left, want 15s", got)
	}
	clk.SetTime(now.Add(26 * time.Second))
	if got := r.leaseExpiresIn(renewed); got > 0 {
		t.Errorf("record unchanged for its whole duration: %v left, want expired", got)
	}
	if got := r.leaseExpiresIn(lease("", now)); got > 0 {
		t.Errorf("released lease: %v left", got)
	}
}

func TestCrashBackoffDoublesUpToItsCap(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	r := &WhatsAppConnectionReconciler{Clock: clocktesting.NewFakePassiveClock(now), CrashBackoff: 10 * time.Second, CrashBackoffMax: 5 * time.Minute}
	pod := &corev1.Pod{Status: corev1.PodStatus{
		StartTime: &metav1.Time{Time: now.Add(-2 * time.Second)},
		ContainerStatuses: []corev1.ContainerStatus{{Name: sessionContainer, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.Time{Time: now}}}}},
	}}
	for _, tc := range []struct {
		exits     int
		connected bool
		want      time.Duration
	}{
		{0, false, 0},
		{1, false, 10 * time.Second},
		{2, false, 20 * time.Second},
		{3, false, 40 * time.Second},
		{6, false, 300 * time.Second},
		{40, false, 300 * time.Second},
		// A session that had logged in: a kill costs a pod start, twice in a row; a session
		// that keeps dying after it logs in backs off after that.
		{1, true, 0},
		{2, true, 0},
		{3, true, 10 * time.Second},
		{4, true, 20 * time.Second},
		{40, true, 300 * time.Second},
	} {
		if got := r.crashBackoff(pod, tc.exits, tc.connected); got != tc.want {
			t.Errorf("after %d quick exits in a row (logged in: %v): backoff %v, want %v", tc.exits, tc.connected, got, tc.want)
		}
	}
}

func TestLoggedInNamesThePodIncarnation(t *testing.T) {
	started := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "wac-session", UID: "u2"},
		Status: corev1.PodStatus{StartTime: &metav1.Time{Time: started}}}
	status := func(holderUID string, lastConnected time.Time) *whatsappv1alpha1.WhatsAppConnection {
		wac := &whatsappv1alpha1.WhatsAppConnection{}
		wac.Status.Connection = &whatsappv1alpha1.ConnectionStatus{
			Holder:          &whatsappv1alpha1.Holder{Pod: "wac-session", UID: holderUID},
			LastConnectedAt: &metav1.Time{Time: lastConnected},
		}
		return wac
	}
	for _, tc := range []struct {
		name string
		wac  *whatsappv1alpha1.WhatsAppConnection
		want bool
	}{
		{"this incarnation logged in", status("u2", started.Add(time.Second)), true},
		{"the same-named predecessor logged in", status("u1", started.Add(time.Second)), false},
		{"a login older than this pod", status("u2", started.Add(-time.Minute)), false},
		{"no status yet", &whatsappv1alpha1.WhatsAppConnection{}, false},
	} {
		if got := loggedIn(tc.wac, pod); got != tc.want {
			t.Errorf("%s: loggedIn = %v, want %v", tc.name, got, tc.want)
		}
	}
}
