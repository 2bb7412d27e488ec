package controllers

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// The manager reads no Secret: its ClusterRole (generated from the markers) has no rule on
// Secrets, and the Role it gives sessions has none either (RBAC would refuse to let the manager
// grant one it does not hold).
func TestNoRoleGrantsAnythingOnSecrets(t *testing.T) {
	for _, path := range []string{
		filepath.Join("..", "config", "rbac", "role.yaml"),
		filepath.Join("..", "charts", "whatsapp-operator", "files", "manager-role.yaml"),
	} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		role := rbacv1.ClusterRole{}
		if err := yaml.Unmarshal(raw, &role); err != nil {
			t.Fatal(err)
		}
		if len(role.Rules) == 0 {
			t.Fatalf("%s: no rules read", path)
		}
		for _, rule := range role.Rules {
			if slices.Contains(rule.Resources, "secrets") || slices.Contains(rule.Resources, "*") {
				t.Errorf("%s grants %v on %v", path, rule.Verbs, rule.Resources)
			}
		}
	}
	wac := &whatsappv1alpha1.WhatsAppConnection{}
	wac.Name = "pg"
	wac.Spec.Store.Postgres = &whatsappv1alpha1.PostgresStore{SecretRef: whatsappv1alpha1.SecretKeyRef{Name: "db"}}
	for _, rule := range sessionRules(wac) {
		if slices.Contains(rule.Resources, "secrets") {
			t.Errorf("the session Role grants %v on Secrets", rule.Verbs)
		}
	}
}

func TestStoreSecretVerdictClassifiesTheKubeletsReport(t *testing.T) {
	wac := &whatsappv1alpha1.WhatsAppConnection{}
	wac.Namespace, wac.Name = "ns", "pg"
	wac.Spec.Store.Postgres = &whatsappv1alpha1.PostgresStore{SecretRef: whatsappv1alpha1.SecretKeyRef{Name: "db"}}
	for msg, want := range map[string]string{
		`secret "db" not found`:                 whatsappv1alpha1.ReasonSecretNotFound,
		"couldn't find key dsn in Secret ns/db": whatsappv1alpha1.ReasonSecretKeyNotFound,
		`secret "db" is forbidden: marker-91`:   whatsappv1alpha1.ReasonPodPending,
	} {
		pod := podWaiting(createContainerConfigError, msg)
		v := storeSecretVerdict(wac, pod)
		if v == nil || v.reason != want {
			t.Errorf("%q: got %+v, want %s", msg, v, want)
			continue
		}
		if v.message == msg || contains(v.message, "marker-91") {
			t.Errorf("%q: the kubelet's message is echoed: %q", msg, v.message)
		}
	}
	if v := storeSecretVerdict(wac, podWaiting("ContainerCreating", "")); v != nil {
		t.Errorf("a container being created is no config error: %+v", v)
	}
}

func podWaiting(reason, message string) *corev1.Pod {
	return &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
		Name: sessionContainer, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
	}}}}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
