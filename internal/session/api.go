package session

import (
	"context"
	"encoding/json"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// apiClient is everything the session asks of the API server: get and update its Lease, get and
// watch its own resource, apply status.connection. That is the session Role, and nothing more.
//
// It is client-go's bare REST client over a scheme of those two kinds on purpose. client-go's
// leader election and typed clients, and controller-runtime's client, link the typed clientset
// and with it every API group: twice the binary, and a session's resident memory is mostly the
// pages of its binary (docs/benchmarks.md, "session memory").
type apiClient struct {
	leases, connections   *rest.RESTClient
	namespace             string
	leaseName, connection string
}

func newAPIClient(cfg *rest.Config, namespace, leaseName, connection string) (*apiClient, error) {
	scheme := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := whatsappv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	codecs := serializer.NewCodecFactory(scheme).WithoutConversion()
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	restFor := func(gv schema.GroupVersion) (*rest.RESTClient, error) {
		c := rest.CopyConfig(cfg)
		c.GroupVersion, c.APIPath, c.NegotiatedSerializer = &gv, "/apis", codecs
		if c.UserAgent == "" {
			c.UserAgent = "whatsapp-session"
		}
		return rest.RESTClientForConfigAndClient(c, httpClient)
	}
	c := &apiClient{namespace: namespace, leaseName: leaseName, connection: connection}
	if c.leases, err = restFor(coordinationv1.SchemeGroupVersion); err != nil {
		return nil, err
	}
	if c.connections, err = restFor(whatsappv1alpha1.GroupVersion); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *apiClient) GetLease(ctx context.Context) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	err := c.leases.Get().Namespace(c.namespace).Resource("leases").Name(c.leaseName).Do(ctx).Into(out)
	return out, err
}

// updateLease writes lease as read (its resourceVersion is the optimistic lock) with a new spec.
func (c *apiClient) UpdateLease(ctx context.Context, lease *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	err := c.leases.Put().Namespace(c.namespace).Resource("leases").Name(c.leaseName).Body(lease).Do(ctx).Into(out)
	return out, err
}

// watchConnection watches the own resource from resourceVersion on ("0": from the API server's
// watch cache, starting with the resource as the cache has it). The Role allows get and watch
// on this one name, not list, hence a name field selector rather than an informer.
func (c *apiClient) watchConnection(ctx context.Context, resourceVersion string) (watch.Interface, error) {
	return c.connections.Get().Namespace(c.namespace).Resource("whatsappconnections").
		Param("watch", "true").
		Param("fieldSelector", "metadata.name="+c.connection).
		Param("resourceVersion", resourceVersion).
		Watch(ctx)
}

// sessionStatus is the part of the resource's status the session owns, typed: a field added to
// ConnectionStatus is written without a map of fields to update.
type sessionStatus struct {
	Connection *whatsappv1alpha1.ConnectionStatus `json:"connection,omitempty"`
	// Conditions holds only EventsDelivering, applied by its own field manager
	// (EventsFieldManager): the status field manager never sets it.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// statusApplyBody is the session's server-side apply body (cert-manager's shape): the
// resource's identity and only the status fields the session owns.
func (c *apiClient) statusApplyBody(status sessionStatus) ([]byte, error) {
	type objectRef struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	}
	return json.Marshal(struct {
		APIVersion string        `json:"apiVersion"`
		Kind       string        `json:"kind"`
		Metadata   objectRef     `json:"metadata"`
		Status     sessionStatus `json:"status"`
	}{whatsappv1alpha1.GroupVersion.String(), "WhatsAppConnection", objectRef{c.namespace, c.connection}, status})
}

// applyStatus applies status with server-side apply, taking over any field another manager set.
//
// fieldValidation=Ignore spares the API server a second parse of the body: an apply body is
// YAML to it (JSON parsed by a YAML parser, slow on the QR drawing's block characters), and
// under the default (Warn) it parses the body again, strictly, to find unknown or duplicate
// fields. json.Marshal of the typed body writes neither; a field the installed CRD lacks is
// dropped either way (Warn only adds a warning nobody reads).
func (c *apiClient) applyStatus(ctx context.Context, status sessionStatus, fieldManager string) error {
	body, err := c.statusApplyBody(status)
	if err != nil {
		return err
	}
	return c.connections.Patch(types.ApplyPatchType).Namespace(c.namespace).Resource("whatsappconnections").
		Name(c.connection).SubResource("status").
		Param("fieldManager", fieldManager).Param("force", "true").Param("fieldValidation", "Ignore").
		Body(body).Do(ctx).Error()
}
