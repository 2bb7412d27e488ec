package v1alpha1_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// TestPhasesMatchTheCRDEnum: the manager exports one whatsapp_operator_connection_phase series
// per entry of Phases, so a phase added to the enum must be added there too.
func TestPhasesMatchTheCRDEnum(t *testing.T) {
	var enum []string
	for _, v := range generatedSchema(t).Properties["status"].Properties["phase"].Enum {
		var s string
		if err := yaml.Unmarshal(v.Raw, &s); err != nil {
			t.Fatal(err)
		}
		enum = append(enum, s)
	}
	var phases []string
	for _, p := range v1alpha1.Phases {
		phases = append(phases, string(p))
	}
	if len(enum) == 0 || !slices.Equal(enum, phases) {
		t.Errorf("v1alpha1.Phases = %v, the CRD's status.phase enum = %v", phases, enum)
	}
}

// generatedSchema is the CRD's schema as controller-gen wrote it from the markers.
func generatedSchema(t *testing.T) *apiextensionsv1.JSONSchemaProps {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "whatsapp.waoperator.io_whatsappconnections.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(data, crd); err != nil {
		t.Fatal(err)
	}
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema
}
