package install_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

var (
	ctx       = context.Background()
	k8sClient client.Client
	// restConfig is the administrator's; impersonating clients start from it.
	restConfig *rest.Config
	scheme     = runtime.NewScheme()
)

// TestMain starts an API server without the operator's CRDs: the manifests under test bring
// them. Only stand-ins for the Prometheus Operator's CRDs are preinstalled (see monitoringCRDs).
func TestMain(m *testing.M) {
	env := &envtest.Environment{CRDs: monitoringCRDs()}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest (make test sets KUBEBUILDER_ASSETS):", err)
		os.Exit(1)
	}
	restConfig = cfg
	err = clientgoscheme.AddToScheme(scheme)
	if err == nil {
		err = apiextensionsv1.AddToScheme(scheme)
	}
	if err == nil {
		err = whatsappv1alpha1.AddToScheme(scheme)
	}
	if err == nil {
		k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	}
	code := 1
	if err == nil {
		code = m.Run()
	} else {
		fmt.Fprintln(os.Stderr, err)
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// decode splits a multi-document YAML stream into objects.
func decode(t testing.TB, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("decoding manifests: %v", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// applyAll server-side applies the objects the way kubectl apply --server-side does: CRDs and
// Namespaces first, then the rest once the CRDs are served. Every object must be accepted.
func applyAll(t testing.TB, manager string, objs []*unstructured.Unstructured, opts ...client.ApplyOption) {
	t.Helper()
	first := func(u *unstructured.Unstructured) bool {
		return u.GetKind() == "CustomResourceDefinition" || u.GetKind() == "Namespace"
	}
	for _, pass := range []bool{true, false} {
		for _, u := range objs {
			if first(u) != pass {
				continue
			}
			apply(t, manager, u, opts...)
			if u.GetKind() == "CustomResourceDefinition" {
				waitEstablished(t, u.GetName())
			}
		}
	}
}

func apply(t testing.TB, manager string, u *unstructured.Unstructured, opts ...client.ApplyOption) {
	t.Helper()
	opts = append([]client.ApplyOption{client.FieldOwner(manager), client.ForceOwnership}, opts...)
	// A just-established CRD takes a moment to appear in discovery.
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), opts...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "no matches for kind") {
			t.Fatalf("apply %s %s/%s rejected: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitEstablished(t testing.TB, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, crd); err == nil {
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("CRD %s not established", name)
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, u := range objs {
		if u.GetKind() == kind && (name == "" || u.GetName() == name) {
			return u
		}
	}
	return nil
}

// monitoringCRDs stand in for the Prometheus Operator's CRDs, which are not vendored here: they
// check that the monitoring objects are well-formed objects of those kinds, not their schema.
func monitoringCRDs() []*apiextensionsv1.CustomResourceDefinition {
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, kind := range []string{"ServiceMonitor", "PodMonitor", "PrometheusRule"} {
		plural := strings.ToLower(kind) + "s"
		yes := true
		crds = append(crds, &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: plural + ".monitoring.coreos.com"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "monitoring.coreos.com",
				Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural, Singular: strings.ToLower(kind)},
				Scope: apiextensionsv1.NamespaceScoped,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type:       "object",
						Required:   []string{"spec"},
						Properties: map[string]apiextensionsv1.JSONSchemaProps{"spec": {Type: "object", XPreserveUnknownFields: &yes}},
					}},
				}},
			},
		})
	}
	return crds
}
