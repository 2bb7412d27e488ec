package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// sessionRules is everything a session pod may do: read and watch its own resource, patch its
// own resource's status and hold its own Lease. Every rule names its object, so one tenant's
// session can touch nothing of another's. No Secret: the kubelet injects the store's DSN
// (whatsappconnection_secret.go), and the manager, which holds no right on Secrets, could not
// grant one.
func sessionRules(wac *whatsappv1alpha1.WhatsAppConnection) []rbacv1.PolicyRule {
	group := whatsappv1alpha1.GroupVersion.Group
	return []rbacv1.PolicyRule{
		{APIGroups: []string{group}, Resources: []string{"whatsappconnections"}, ResourceNames: []string{wac.Name}, Verbs: []string{"get", "watch"}},
		{APIGroups: []string{group}, Resources: []string{"whatsappconnections/status"}, ResourceNames: []string{wac.Name}, Verbs: []string{"patch"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{sessionName(wac)}, Verbs: []string{"get", "update"}},
	}
}

// ensureRBAC creates the session's ServiceAccount, Role and RoleBinding, and puts back the
// Role's rules and the binding's subjects if someone changed them.
func (r *WhatsAppConnectionReconciler) ensureRBAC(ctx context.Context, p *pass) (*ctrl.Result, error) {
	wac := p.wac
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: sessionName(wac), Namespace: wac.Namespace, Labels: commonLabels(wac)}
	}
	sa := &corev1.ServiceAccount{ObjectMeta: meta()}
	role := &rbacv1.Role{ObjectMeta: meta(), Rules: sessionRules(wac)}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: meta(),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sessionName(wac)},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sessionName(wac), Namespace: wac.Namespace}},
	}

	if res, err := r.createIfMissing(ctx, wac, sa, &corev1.ServiceAccount{}); res != nil || err != nil {
		return res, err
	}
	current := &rbacv1.Role{}
	if res, err := r.createIfMissing(ctx, wac, role, current); res != nil || err != nil {
		return res, err
	}
	if err := repairOwned(ctx, r, wac, current, &rbacv1.Role{},
		func(x *rbacv1.Role) bool { return !equality.Semantic.DeepEqual(x.Rules, role.Rules) },
		func(x *rbacv1.Role) { x.Rules = role.Rules }); err != nil {
		return nil, err
	}
	currentBinding := &rbacv1.RoleBinding{}
	if res, err := r.createIfMissing(ctx, wac, binding, currentBinding); res != nil || err != nil {
		return res, err
	}
	if err := repairOwned(ctx, r, wac, currentBinding, &rbacv1.RoleBinding{},
		func(x *rbacv1.RoleBinding) bool { return !equality.Semantic.DeepEqual(x.Subjects, binding.Subjects) },
		func(x *rbacv1.RoleBinding) { x.Subjects = binding.Subjects }); err != nil {
		return nil, err
	}
	return nil, nil
}

// createIfMissing reads the object into current; when it does not exist it creates desired,
// controlled by wac, and leaves current empty. checkOwnership has already refused objects that
// exist and are not controlled by wac.
func (r *WhatsAppConnectionReconciler) createIfMissing(ctx context.Context, wac *whatsappv1alpha1.WhatsAppConnection, desired, current client.Object) (*ctrl.Result, error) {
	err := r.Get(ctx, client.ObjectKeyFromObject(desired), current)
	if err == nil {
		return nil, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	current.SetName("")
	if err := controllerutil.SetControllerReference(wac, desired, r.Scheme); err != nil {
		return nil, err
	}
	if err := r.Create(ctx, desired); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return r.alreadyExists(ctx, wac, desired)
		}
		return nil, err
	}
	return nil, nil
}
