package controllers

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// The manager reads no Secret. The postgres store's DSN reaches the session through an env
// secretKeyRef, resolved by the kubelet, so neither the manager nor the session needs any right
// on Secrets (and the manager could not grant the session one it does not hold: RBAC's
// escalation check). What the controller learns of a missing Secret or key is what the kubelet
// reports on the pod: the session container waiting with CreateContainerConfigError. The kubelet
// retries on its own (every ~10 s in a cluster), and the pod's move to Running brings the
// resource back, so nothing here polls.

// createContainerConfigError is the kubelet's waiting reason for a container whose environment
// (or other configuration) cannot be built.
const createContainerConfigError = "CreateContainerConfigError"

// storeSecretVerdict classifies the kubelet's report on a session pod that cannot start into
// SecretNotFound or SecretKeyNotFound. The kubelet's message is never echoed: only its class,
// and names the resource's own spec holds. Nil when the pod is not waiting on its configuration.
func storeSecretVerdict(wac *whatsappv1alpha1.WhatsAppConnection, pod *corev1.Pod) *verdict {
	if pod == nil || pod.Status.Phase != corev1.PodPending {
		return nil
	}
	var waiting *corev1.ContainerStateWaiting
	for i := range pod.Status.ContainerStatuses {
		cs := &pod.Status.ContainerStatuses[i]
		if cs.Name == sessionContainer && cs.State.Waiting != nil && cs.State.Waiting.Reason == createContainerConfigError {
			waiting = cs.State.Waiting
		}
	}
	if waiting == nil {
		return nil
	}
	if v := sinkSecretVerdict(wac, waiting.Message); v != nil {
		return v
	}
	pg := wac.Spec.Store.Postgres
	switch {
	case pg != nil && secretKeyMissing(waiting.Message):
		return &verdict{whatsappv1alpha1.ReasonSecretKeyNotFound, fmt.Sprintf(
			"Secret %s/%s has no key %q (spec.store.postgres.secretRef.key); the session starts when it is added",
			wac.Namespace, pg.SecretRef.Name, secretKey(pg.SecretRef))}
	case pg != nil && secretMissing(waiting.Message):
		return &verdict{whatsappv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
			"Secret %s/%s named by spec.store.postgres.secretRef does not exist; the session starts when it is created",
			wac.Namespace, pg.SecretRef.Name)}
	default:
		return &verdict{whatsappv1alpha1.ReasonPodPending,
			"the kubelet cannot build the session container's configuration (CreateContainerConfigError); see the pod's events"}
	}
}

// secretKeyMissing matches the kubelet's "couldn't find key K in Secret NS/NAME"
// (pkg/kubelet/kubelet_pods.go, makeEnvironmentVariables).
func secretKeyMissing(msg string) bool {
	return strings.Contains(msg, "couldn't find key") && strings.Contains(msg, "in Secret")
}

// secretMissing matches the kubelet's secret manager's NotFound: `secret "NAME" not found`.
func secretMissing(msg string) bool {
	return strings.Contains(msg, `secret "`) && strings.HasSuffix(strings.TrimSpace(msg), "not found")
}
