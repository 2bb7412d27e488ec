package controllers

import (
	"context"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// The session ClusterRoleBindings (whatsappconnection_sendapi_rbac.go) are checked on every
// pass, including the periodic ones of a healthy session. Read from the API server, that was one
// GET per pass (~90 per session-hour). When the manager may list and watch ClusterRoleBindings
// (a cluster-wide install), its cache holds the ones it made instead: only those labelled as a
// session's (ownedSelector), never the cluster's other bindings, and a change to one (deleted,
// subjects edited) wakes its resource, which puts it back at once rather than at the next pass.
// A namespaced install (Roles only) cannot watch them and keeps reading them live.

// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterrolebindings,verbs=list;watch

// mayWatchClusterRoleBindings asks the API server whether this manager may list and watch
// ClusterRoleBindings cluster-wide. A cache of a kind it may not watch would never sync (and the
// controller would not start), so that is decided before the cache is built.
func mayWatchClusterRoleBindings(ctx context.Context, cfg *rest.Config) (bool, error) {
	c, err := client.New(cfg, client.Options{Scheme: NewScheme()})
	if err != nil {
		return false, err
	}
	for _, verb := range []string{"list", "watch"} {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: rbacv1.GroupName, Resource: "clusterrolebindings"},
		}}
		if err := c.Create(ctx, review); err != nil {
			// A cluster that does not let it ask is treated as one that does not let it watch.
			return false, ignoreForbidden(err)
		}
		if !review.Status.Allowed {
			return false, nil
		}
	}
	return true, nil
}

func ignoreForbidden(err error) error {
	if apierrors.IsForbidden(err) {
		return nil
	}
	return err
}

// cacheOwnBindings adds the session ClusterRoleBindings, and only those, to the cache options.
func cacheOwnBindings(o *cache.Options) {
	if o.ByObject == nil {
		o.ByObject = map[client.Object]cache.ByObject{}
	}
	o.ByObject[&rbacv1.ClusterRoleBinding{}] = cache.ByObject{Label: ownedSelector, Transform: trimOwnedBinding}
}

// mapBindingOwner wakes the resource a session ClusterRoleBinding was made for, named by its
// owner annotation (namespace/name/uid).
func mapBindingOwner(_ context.Context, obj client.Object) []reconcile.Request {
	parts := strings.SplitN(obj.GetAnnotations()[ownerAnnotation], "/", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: parts[0], Name: parts[1]}}}
}

// noBindingCreates drops create events of session ClusterRoleBindings: the controller made the
// binding in the pass that is running, and one without the owner annotation maps to no resource.
var noBindingCreates = predicate.Funcs{CreateFunc: func(event.CreateEvent) bool { return false }}
