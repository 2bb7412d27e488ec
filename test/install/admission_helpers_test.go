package install_test

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// mayEditConnections is the Role rule of a user who may create and edit WhatsAppConnections
// and nothing else.
var mayEditConnections = rbacv1.PolicyRule{APIGroups: []string{whatsappv1alpha1.GroupVersion.Group},
	Resources: []string{"whatsappconnections"}, Verbs: []string{"get", "list", "create", "update", "patch"}}

// mayGetSecret is the Role rule of a user who may read the one Secret name.
func mayGetSecret(name string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{name}, Verbs: []string{"get"}}
}

// admissionNamespace installs the CRD and config/admission, and makes the restricted namespace ns
// with one Secret per name, each holding data.
func admissionNamespace(t *testing.T, ns string, data map[string]string, secrets ...string) {
	t.Helper()
	applyAll(t, "install-test", decode(t, mustRead(t, "config/crd/bases/whatsapp.waoperator.io_whatsappconnections.yaml")))
	applyAll(t, "install-test", decode(t, run(t, root, kustomize(t), "build", "config/admission")))
	applyAll(t, "install-test", []*unstructured.Unstructured{restrictedNamespace(ns)})
	for _, s := range secrets {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: s}, StringData: data}
		if err := client.IgnoreAlreadyExists(k8sClient.Create(ctx, secret)); err != nil {
			t.Fatal(err)
		}
	}
}

// awaitPolicy waits until the admission policy refuses probe to as: the API server applies a
// new policy asynchronously, and a dry-run create shows when it is in force.
func awaitPolicy(t *testing.T, as client.Client, probe *whatsappv1alpha1.WhatsAppConnection, refusal string) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		return as.Create(ctx, probe, client.DryRunAll)
	}).WithTimeout(30 * time.Second).Should(MatchError(ContainSubstring(refusal)))
}

// admissionCase is one dry-run create of a WhatsAppConnection by a user, and what the policy
// says to it.
type admissionCase struct {
	name   string
	as     client.Client
	mutate func(*whatsappv1alpha1.WhatsAppConnection)
	refuse string // "" admits
}

// checkAdmission runs each case as a subtest: the create is admitted, or refused with the case's
// message, and a refusal quotes none of neverQuoted.
func checkAdmission(t *testing.T, ns string, cases []admissionCase, neverQuoted ...string) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.as.Create(ctx, connection(ns, "", tc.mutate), client.DryRunAll)
			if tc.refuse == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.refuse) {
				t.Fatalf("got %v, want a refusal saying %q", err, tc.refuse)
			}
			for _, s := range neverQuoted {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the refusal quotes %q: %v", s, err)
				}
			}
		})
	}
}

// userWith binds a Role with the rules to a user and returns a client that acts as that user.
func userWith(t testing.TB, ns, user string, rules ...rbacv1.PolicyRule) client.Client {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Rules: rules}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := client.IgnoreAlreadyExists(k8sClient.Create(ctx, obj)); err != nil {
			t.Fatal(err)
		}
	}
	// The RBAC authorizer learns of a new binding from a watch: wait until it grants the rules.
	NewWithT(t).Eventually(func() bool {
		for _, r := range rules {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: r.Verbs[0], Group: r.APIGroups[0], Resource: r.Resources[0]}}}
			if len(r.ResourceNames) > 0 {
				sar.Spec.ResourceAttributes.Name = r.ResourceNames[0]
			}
			if err := k8sClient.Create(ctx, sar); err != nil || !sar.Status.Allowed {
				return false
			}
		}
		return true
	}).Should(BeTrue())
	cfg := rest.CopyConfig(restConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func connection(ns, name string, mutate ...func(*whatsappv1alpha1.WhatsAppConnection)) *whatsappv1alpha1.WhatsAppConnection {
	w := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if name == "" {
		w.GenerateName = "wac-"
	}
	for _, m := range mutate {
		if m != nil {
			m(w)
		}
	}
	return w
}
