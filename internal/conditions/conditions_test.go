package conditions

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSetMovesTransitionTimeOnlyOnStatusChange(t *testing.T) {
	var conds []metav1.Condition
	if !Set(&conds, 1, "Ready", metav1.ConditionFalse, "Pending", "waiting") {
		t.Fatal("a new condition must report a change")
	}
	first := conds[0].LastTransitionTime
	// Pretend the first write happened a while ago so that a moved timestamp is visible.
	conds[0].LastTransitionTime = metav1.NewTime(first.Add(-time.Hour))
	past := conds[0].LastTransitionTime

	if Set(&conds, 2, "Ready", metav1.ConditionFalse, "Pending", "still waiting") {
		t.Fatal("same status and reason must not report a change")
	}
	if !conds[0].LastTransitionTime.Equal(&past) {
		t.Fatalf("lastTransitionTime moved without a status change: %v -> %v", past, conds[0].LastTransitionTime)
	}
	if conds[0].ObservedGeneration != 2 || conds[0].Message != "still waiting" {
		t.Fatalf("generation and message must follow the latest computation: %+v", conds[0])
	}

	if !Set(&conds, 3, "Ready", metav1.ConditionFalse, "Other", "x") {
		t.Fatal("a new reason must report a change")
	}
	if !conds[0].LastTransitionTime.Equal(&past) {
		t.Fatal("a reason change alone must not move lastTransitionTime")
	}
	if !Set(&conds, 3, "Ready", metav1.ConditionTrue, "Connected", "") {
		t.Fatal("a status change must report a change")
	}
	if conds[0].LastTransitionTime.Equal(&past) {
		t.Fatal("a status change must move lastTransitionTime")
	}
	if !IsTrue(conds, "Ready") || Get(conds, "Paired") != nil {
		t.Fatal("IsTrue/Get disagree with the recorded conditions")
	}
}
