package controllers

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// controllerConditions are the condition types the controller owns. Other types in
// status.conditions belong to the session (which applies them with its own field manager): the
// controller neither writes nor takes them over.
var controllerConditions = map[string]bool{
	whatsappv1alpha1.ConditionReady:     true,
	whatsappv1alpha1.ConditionPaired:    true,
	whatsappv1alpha1.ConditionConnected: true,
	whatsappv1alpha1.ConditionConflict:  true,
	whatsappv1alpha1.ConditionDegraded:  true,
}

// statusApply is the controller's server-side apply body, cert-manager's shape: a typed object
// that holds the resource's identity and only the fields the controller owns. It is built from
// the status type itself, so a field added to WhatsAppConnectionStatus is written without
// anyone remembering to (a map of fields would silently leave it out). Empty fields are
// omitted, which gives up their ownership and so clears them.
type statusApply struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        statusApplyMeta                           `json:"metadata"`
	Status          whatsappv1alpha1.WhatsAppConnectionStatus `json:"status"`
}

type statusApplyMeta struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// newStatusApply is the body that applies st, minus what the session owns (connection and its
// conditions), to the resource namespace/name.
func newStatusApply(namespace, name string, st whatsappv1alpha1.WhatsAppConnectionStatus) *statusApply {
	st.Connection = nil
	owned := make([]metav1.Condition, 0, len(st.Conditions))
	for _, c := range st.Conditions {
		if controllerConditions[c.Type] {
			owned = append(owned, c)
		}
	}
	st.Conditions = owned
	return &statusApply{
		TypeMeta: metav1.TypeMeta{APIVersion: whatsappv1alpha1.GroupVersion.String(), Kind: "WhatsAppConnection"},
		Metadata: statusApplyMeta{Namespace: namespace, Name: name},
		Status:   st,
	}
}

// unstructured is the body as controller-runtime's Apply takes it (omitempty respected).
func (a *statusApply) unstructured() (*unstructured.Unstructured, error) {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(a)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: obj}, nil
}
