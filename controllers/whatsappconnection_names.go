package controllers

import (
	"strings"

	"k8s.io/apimachinery/pkg/types"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// Every object the controller creates for a WhatsAppConnection has a name derived from the
// resource's name. The session pod's name is fixed, so the API server itself refuses a second
// pod while one exists (terminating ones included): that, not a cache, is what keeps "exactly one".
const (
	sessionSuffix = "-session" // Pod, Lease, ServiceAccount, Role, RoleBinding
	storeSuffix   = "-store"   // PersistentVolumeClaim
)

func sessionName(wac *whatsappv1alpha1.WhatsAppConnection) string { return wac.Name + sessionSuffix }
func storeName(wac *whatsappv1alpha1.WhatsAppConnection) string   { return wac.Name + storeSuffix }

// connectionFor maps an object's name back to the WhatsAppConnection it would belong to.
func connectionFor(namespace, name, suffix string) (types.NamespacedName, bool) {
	base, ok := strings.CutSuffix(name, suffix)
	if !ok || base == "" {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: namespace, Name: base}, true
}

// commonLabels are set on every object the controller creates.
func commonLabels(wac *whatsappv1alpha1.WhatsAppConnection) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":         "whatsapp-session",
		"app.kubernetes.io/instance":     wac.Name,
		"app.kubernetes.io/managed-by":   "whatsapp-operator",
		whatsappv1alpha1.ConnectionLabel: wac.Name,
	}
}
