package install_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// access is one row of a table of what an identity may and may not do.
type access struct {
	verb, group, resource, subresource, namespace, name string
	allowed                                             bool
}

func (a access) String() string {
	what := a.resource
	if a.subresource != "" {
		what += "/" + a.subresource
	}
	if a.group != "" {
		what += "." + a.group
	}
	where := "cluster-wide"
	if a.namespace != "" {
		where = "in " + a.namespace
	}
	if a.name != "" {
		where += " named " + a.name
	}
	return fmt.Sprintf("%s %s %s", a.verb, what, where)
}

// checkAccess asks the API server's authorizer (SubjectAccessReview) about each row, waiting
// for the RBAC authorizer to learn of just-applied bindings.
func checkAccess(t *testing.T, user string, rows []access) {
	t.Helper()
	ns := strings.Split(user, ":")[2]
	for _, row := range rows {
		t.Run(fmt.Sprintf("%s may %s%s", user[strings.LastIndex(user, ":")+1:], map[bool]string{false: "not "}[row.allowed], row), func(t *testing.T) {
			NewWithT(t).Eventually(func() (bool, error) {
				sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
					User:   user,
					Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
					ResourceAttributes: &authorizationv1.ResourceAttributes{
						Namespace: row.namespace, Verb: row.verb, Group: row.group, Resource: row.resource,
						Subresource: row.subresource, Name: row.name,
					},
				}}
				err := k8sClient.Create(ctx, sar)
				return sar.Status.Allowed, err
			}).Should(Equal(row.allowed))
		})
	}
}

const (
	wa     = "whatsapp.waoperator.io"
	coord  = "coordination.k8s.io"
	rbac   = "rbac.authorization.k8s.io"
	tenant = "some-tenant"
)

// managerCommon is what the manager may and may not do wherever it acts (namespace ns).
func managerCommon(ns string) []access {
	return []access{
		{"list", wa, "whatsappconnections", "", ns, "", true},
		{"patch", wa, "whatsappconnections", "status", ns, "x", true},
		{"update", wa, "whatsappconnections", "finalizers", ns, "x", true},
		{"create", "", "pods", "", ns, "", true},
		{"delete", "", "pods", "", ns, "x-session", true},
		{"create", "", "persistentvolumeclaims", "", ns, "", true},
		{"create", coord, "leases", "", ns, "", true},
		// RBAC cannot scope these by label: the manager must hold update on the Leases it lets
		// sessions update (the API server refuses to create a Role granting more than its
		// creator has), and it deletes a resource's Lease with it. See the README's security section.
		{"update", coord, "leases", "", ns, "x-session", true},
		{"create", rbac, "roles", "", ns, "", true},
		{"create", "events.k8s.io", "events", "", ns, "", true},

		{"create", "", "pods", "exec", ns, "x-session", false},
		{"update", "", "pods", "", ns, "x-session", false},
		{"patch", "", "pods", "", ns, "x-session", false},
		{"create", "", "serviceaccounts", "token", ns, "x-session", false},
		{"delete", wa, "whatsappconnections", "", ns, "x", false},
		{"create", wa, "whatsappconnections", "", ns, "", false},
		{"escalate", rbac, "roles", "", ns, "x", false},
		{"bind", rbac, "roles", "", ns, "x", false},
		{"create", rbac, "clusterroles", "", "", "", false},
		// The manager has neither bind nor escalate: a ClusterRoleBinding it may create (cluster-wide
		// installs, see clusterRoleBindingForSendAPI) can only bind a role whose permissions it holds.
		{"bind", rbac, "clusterroles", "", "", "cluster-admin", false},
		{"escalate", rbac, "clusterroles", "", "", "x", false},
		{"create", "authentication.k8s.io", "tokenreviews", "", "", "", true},
		{"create", "authorization.k8s.io", "subjectaccessreviews", "", "", "", true},
		{"create", "apps", "deployments", "", ns, "", false},
		{"create", "", "configmaps", "", ns, "", false},
		{"impersonate", "", "serviceaccounts", "", ns, "x-session", false},
		{"update", "", "namespaces", "", "", ns, false},
		{"patch", "", "nodes", "", "", "x", false},
	}
}

// clusterRoleBindingForSendAPI: a cluster-wide manager creates one ClusterRoleBinding per
// connection, binding its session to system:auth-delegator (the send API's TokenReviews and
// SubjectAccessReviews are cluster-scoped). It holds both permissions of that role, which is all
// the API server asks of a binder (controllers' "may bind system:auth-delegator but not
// cluster-admin" spec). A namespace-scoped manager may not: the send API answers 503 there.
func clusterRoleBindingForSendAPI(allowed bool) access {
	return access{"create", rbac, "clusterrolebindings", "", "", "", allowed}
}

func manifestsHave(t *testing.T, objs []*unstructured.Unstructured, kind, name string) {
	t.Helper()
	if find(objs, kind, name) == nil {
		var have []string
		for _, u := range objs {
			have = append(have, u.GetKind()+"/"+u.GetName())
		}
		slices.Sort(have)
		t.Errorf("no %s %s among %v", kind, name, have)
	}
}

// checkAdmissionPolicyShipped: the rendered policy has the same rules as config/admission, and
// its binding names it and denies.
func checkAdmissionPolicyShipped(t *testing.T, objs []*unstructured.Unstructured, policyName string) {
	t.Helper()
	policy := find(objs, "ValidatingAdmissionPolicy", policyName)
	binding := find(objs, "ValidatingAdmissionPolicyBinding", "")
	if policy == nil || binding == nil {
		t.Fatalf("no ValidatingAdmissionPolicy %s with a binding", policyName)
	}
	want := find(decode(t, mustRead(t, "config/admission/policy.yaml")), "ValidatingAdmissionPolicy", "")
	g := NewWithT(t)
	g.Expect(policy.Object["spec"]).To(Equal(want.Object["spec"]), "the shipped policy differs from config/admission/policy.yaml")
	name, _, _ := unstructured.NestedString(binding.Object, "spec", "policyName")
	actions, _, _ := unstructured.NestedStringSlice(binding.Object, "spec", "validationActions")
	g.Expect(name).To(Equal(policyName))
	g.Expect(actions).To(Equal([]string{"Deny"}))
}
