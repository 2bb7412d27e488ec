package controllers

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
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

func TestLeaseExpiresIn(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	r := &WhatsAppConnectionReconciler{Clock: clocktesting.NewFakePassiveClock(now)}
	lease := func(holder string, renewedAgo time.Duration) *coordinationv1.Lease {
		return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(holder),
			LeaseDurationSeconds: ptr.To[int32](15),
			RenewTime:            &metav1.MicroTime{Time: now.Add(-renewedAgo)},
		}}
	}
	if got := r.leaseExpiresIn(lease("p", 5*time.Second)); got != 10*time.Second {
		t.Errorf("renewed 5s ago with 15s duration: %v left, want 10s", got)
	}
	if got := r.leaseExpiresIn(lease("p", 20*time.Second)); got > 0 {
		t.Errorf("expired lease: %v left", got)
	}
	if got := r.leaseExpiresIn(lease("", 0)); got > 0 {
		t.Errorf("released lease: %v left", got)
	}
}
