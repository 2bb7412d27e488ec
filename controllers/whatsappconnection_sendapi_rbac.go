package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// The session's send API asks the API server who a caller is (TokenReview) and whether it may
// send (SubjectAccessReview). Both are cluster-scoped, so a RoleBinding cannot grant them: each
// session's ServiceAccount gets a ClusterRoleBinding to the built-in system:auth-delegator,
// which allows exactly those two creates and nothing else.
//
// Granting it needs neither escalate nor bind: the API server lets a user bind a role whose
// every permission the user holds, and the manager holds both (the markers below, which it
// also needs for its own metrics endpoint). What the manager can bind is therefore capped by
// what it has; a binding to anything more (cluster-admin) is refused (the envtest spec "binds
// system:auth-delegator without escalate or bind" checks both). The binding's subject is the
// session's ServiceAccount alone.
//
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterrolebindings,verbs=get;create;update;delete
// (list and watch: whatsappconnection_sendapi_cache.go)

// authDelegatorRole is the built-in ClusterRole with tokenreviews and subjectaccessreviews create.
const authDelegatorRole = "system:auth-delegator"

// ownerAnnotation marks a cluster-scoped object made for a resource: a ClusterRoleBinding
// cannot have a namespaced owner reference (the garbage collector would never resolve it), so
// the resource's UID is kept here and the controller deletes the binding itself.
const ownerAnnotation = "whatsapp.waoperator.io/owner"

// authDelegatorBindingName names the session's ClusterRoleBinding after its namespace and
// name; a name too long for the API is shortened with a hash.
func authDelegatorBindingName(wac *whatsappv1alpha1.WhatsAppConnection) string {
	name := "whatsapp-session:" + wac.Namespace + ":" + wac.Name
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(wac.Namespace + "/" + wac.Name))
	return name[:253-17] + "-" + hex.EncodeToString(sum[:8])
}

func ownerValue(wac *whatsappv1alpha1.WhatsAppConnection) string {
	return fmt.Sprintf("%s/%s/%s", wac.Namespace, wac.Name, wac.UID)
}

func desiredAuthDelegatorBinding(wac *whatsappv1alpha1.WhatsAppConnection) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: authDelegatorBindingName(wac), Labels: commonLabels(wac),
			Annotations: map[string]string{ownerAnnotation: ownerValue(wac)}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: authDelegatorRole},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sessionName(wac), Namespace: wac.Namespace}},
	}
}

// ensureAuthDelegation creates the session's ClusterRoleBinding, or puts its subjects back. It
// reads the binding from the cache when the manager caches its own (whatsappconnection_sendapi_cache.go),
// otherwise from the API server. A binding of that name the cache does not hold (not labelled
// as ours, or not seen yet) makes the create fail: it is then read from the API server and
// judged like any other. A manager installed for some namespaces only (Roles, no cluster-wide
// rights) cannot grant it: the connection works without it, and its send API answers 503 until
// a cluster admin binds system:auth-delegator to the session's ServiceAccount.
func (r *WhatsAppConnectionReconciler) ensureAuthDelegation(ctx context.Context, p *pass) (*ctrl.Result, error) {
	desired := desiredAuthDelegatorBinding(p.wac)
	current := &rbacv1.ClusterRoleBinding{}
	reader := r.APIReader
	if r.bindingsCached {
		reader = r.Client
	}
	err := reader.Get(ctx, client.ObjectKeyFromObject(desired), current)
	if apierrors.IsNotFound(err) {
		err = r.Create(ctx, desired)
		if apierrors.IsAlreadyExists(err) {
			err = r.APIReader.Get(ctx, client.ObjectKeyFromObject(desired), current)
		}
	}
	if apierrors.IsForbidden(err) {
		logf.FromContext(ctx).V(1).Info("cannot bind system:auth-delegator for the send API (namespaced install?)", "error", err.Error())
		return nil, nil
	}
	if err != nil || current.Name == "" {
		return nil, err
	}
	if r.bindingsCached && bindingDrifted(current, desired) {
		// The cached copy lacks its labels (whatsappconnection_cache.go): what is written is
		// judged and changed on the binding as the API server holds it.
		current = &rbacv1.ClusterRoleBinding{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(desired), current); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
	}
	switch owner := current.Annotations[ownerAnnotation]; {
	case owner == ownerValue(p.wac):
	case strings.HasPrefix(owner, p.wac.Namespace+"/"+p.wac.Name+"/"):
		// Left by an earlier resource of the same name whose finalizer someone removed: it
		// binds the same ServiceAccount, so it is taken over rather than blocking this one.
		current.Annotations[ownerAnnotation] = ownerValue(p.wac)
		if err := r.Update(ctx, current); err != nil {
			return nil, err
		}
	default:
		return nil, &notOwnedError{kind: "ClusterRoleBinding", name: current.Name}
	}
	if current.RoleRef != desired.RoleRef {
		// roleRef is immutable: replace the binding.
		uid := current.UID
		if err := r.Delete(ctx, current, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return nil, err
		}
		return nil, r.Create(ctx, desired)
	}
	if !equality.Semantic.DeepEqual(current.Subjects, desired.Subjects) {
		current.Subjects = desired.Subjects
		if err := r.Update(ctx, current); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// bindingDrifted: the binding is not desired's as it stands (another owner, roleRef or
// subjects), so ensureAuthDelegation would write or refuse it.
func bindingDrifted(current, desired *rbacv1.ClusterRoleBinding) bool {
	return current.Annotations[ownerAnnotation] != desired.Annotations[ownerAnnotation] ||
		current.RoleRef != desired.RoleRef || !equality.Semantic.DeepEqual(current.Subjects, desired.Subjects)
}

// deleteAuthDelegation removes the session's ClusterRoleBinding when this resource made it.
func (r *WhatsAppConnectionReconciler) deleteAuthDelegation(ctx context.Context, wac *whatsappv1alpha1.WhatsAppConnection) error {
	current := &rbacv1.ClusterRoleBinding{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Name: authDelegatorBindingName(wac)}, current)
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if current.Annotations[ownerAnnotation] != ownerValue(wac) {
		return nil
	}
	uid := current.UID
	return client.IgnoreNotFound(r.Delete(ctx, current, client.Preconditions{UID: &uid}))
}
