package install_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// TestKustomizeInstaller renders config/default the way make build-installer does (on a copy,
// so the checkout's config/manager keeps its image) and applies dist/install.yaml's content.
func TestKustomizeInstaller(t *testing.T) {
	kz := kustomize(t)
	tmp := t.TempDir()
	if err := os.CopyFS(filepath.Join(tmp, "config"), os.DirFS(filepath.Join(root, "config"))); err != nil {
		t.Fatal(err)
	}
	const img = "example.com/whatsapp-operator:v0.0.0-test"
	run(t, filepath.Join(tmp, "config", "manager"), kz, "edit", "set", "image", "controller="+img)
	objs := decode(t, run(t, tmp, kz, "build", "config/default"))
	applyAll(t, "install-test", objs)

	dep := find(objs, "Deployment", "whatsapp-operator-controller-manager")
	if dep == nil {
		t.Fatal("install.yaml has no whatsapp-operator-controller-manager Deployment")
	}
	checkManager(t, dep, img, 2)
	checkPodSecurity(t, dep, "whatsapp-operator-system")
	checkAdmissionPolicyShipped(t, objs, "whatsapp-operator-whatsappconnection-policy")

	applyAll(t, "install-test", []*unstructured.Unstructured{restrictedNamespace(tenant)})
	const sa = "system:serviceaccount:whatsapp-operator-system:whatsapp-operator-controller-manager"
	checkAccess(t, sa, append(managerCommon(tenant),
		// Cluster-wide: every namespace, the control plane's own Leases included.
		access{"watch", "", "pods", "", "", "", true},
		access{"create", "", "pods", "", "kube-system", "", true},
		access{"update", coord, "leases", "", "kube-system", "kube-controller-manager", true},
		clusterRoleBindingForSendAPI(true),
	))
}

// TestNamespacedKustomizeInstaller renders config/namespaced, retargeted at another namespace the
// way a user would (a kustomization with namespace: on top), and checks that the manager gets a
// Role there and no right anywhere else.
func TestNamespacedKustomizeInstaller(t *testing.T) {
	kz := kustomize(t)
	tmp := t.TempDir()
	if err := os.CopyFS(filepath.Join(tmp, "config"), os.DirFS(filepath.Join(root, "config"))); err != nil {
		t.Fatal(err)
	}
	const ns = "whatsapp-namespaced"
	if err := os.MkdirAll(filepath.Join(tmp, "mine"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "mine", "kustomization.yaml"), []byte(
		"namespace: "+ns+"\nresources:\n- ../config/namespaced\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	objs := decode(t, run(t, tmp, kz, "build", "mine"))
	for _, u := range objs {
		if u.GetKind() == "ClusterRoleBinding" && u.GetName() == "whatsapp-operator-manager-rolebinding" {
			t.Fatal("the namespaced install binds the manager cluster-wide")
		}
	}
	manifestsHave(t, objs, "Role", "whatsapp-operator-manager-role")
	manifestsHave(t, objs, "RoleBinding", "whatsapp-operator-manager-rolebinding")
	dep := find(objs, "Deployment", "whatsapp-operator-controller-manager")
	if dep == nil {
		t.Fatal("no manager Deployment")
	}
	if args := containerArgs(t, dep); !slices.Contains(args, "--watch-namespaces=$(POD_NAMESPACE)") {
		t.Errorf("the manager does not watch only its own namespace: %v", args)
	}
	// Its pods run in the namespace the manager watches.
	for _, u := range objs {
		if u.GetKind() == "Namespace" {
			u.SetLabels(map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
		}
	}
	applyAll(t, "install-test", append(objs, restrictedNamespace(tenant)))

	checkAccess(t, "system:serviceaccount:"+ns+":whatsapp-operator-controller-manager", append(managerCommon(ns),
		access{"create", "", "pods", "", tenant, "", false},
		access{"list", wa, "whatsappconnections", "", tenant, "", false},
		access{"watch", "", "pods", "", "", "", false},
		access{"create", coord, "leases", "", "kube-system", "", false},
		access{"update", coord, "leases", "", "kube-system", "kube-controller-manager", false},
		access{"update", coord, "leases", "", tenant, "x-session", false},
		clusterRoleBindingForSendAPI(false),
	))
}

// TestHelmChart lints the chart and applies what helm template renders, monitoring included.
func TestHelmChart(t *testing.T) {
	h := helm(t)
	run(t, root, h, "lint", "--strict", "charts/whatsapp-operator")
	const ns = "whatsapp-operator-helm"
	out := run(t, root, h, "template", "whatsapp-operator", "charts/whatsapp-operator", "--namespace", ns,
		"--include-crds", "--set", "image.repository=example.com/whatsapp-operator", "--set", "image.tag=v0.0.0-test",
		"--set", "session.image=example.com/session:v1", "--set", "replicaCount=3",
		"--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true")
	objs := append(decode(t, out), restrictedNamespace(ns))
	applyAll(t, "helm-test", objs)

	for _, kind := range []string{"ServiceMonitor", "PrometheusRule", "Service", "ClusterRole", "CustomResourceDefinition"} {
		if find(objs, kind, "") == nil {
			t.Errorf("helm template rendered no %s", kind)
		}
	}
	checkHonorsLabels(t, find(objs, "ServiceMonitor", ""))
	dep := find(objs, "Deployment", "whatsapp-operator")
	if dep == nil {
		t.Fatal("helm template rendered no whatsapp-operator Deployment")
	}
	checkManager(t, dep, "example.com/whatsapp-operator:v0.0.0-test", 3)
	if args := containerArgs(t, dep); !slices.Contains(args, "--session-image=example.com/session:v1") {
		t.Errorf("session.image did not reach the manager: %v", args)
	}
	checkPodSecurity(t, dep, ns)
	checkAdmissionPolicyShipped(t, objs, "whatsapp-operator-whatsappconnection")
}

// TestHelmChartWatchNamespaces renders the chart with watchNamespaces: the manager gets a Role in
// each of them and no ClusterRole.
func TestHelmChartWatchNamespaces(t *testing.T) {
	h := helm(t)
	const ns, a, b = "whatsapp-operator-helm-ns", "helm-tenant-a", "helm-tenant-b"
	out := run(t, root, h, "template", "scoped", "charts/whatsapp-operator", "--namespace", ns,
		"--set", "image.repository=example.com/whatsapp-operator", "--set", "image.tag=v0.0.0-test",
		"--set", "watchNamespaces={"+a+","+b+"}", "--set", "clusterWideClaims=true", "--set", "admissionPolicy.enabled=false")
	objs := decode(t, out)
	for _, u := range objs {
		if u.GetKind() == "ClusterRoleBinding" && strings.HasSuffix(u.GetName(), "-manager") {
			t.Errorf("watchNamespaces still binds the manager cluster-wide (%s)", u.GetName())
		}
		if strings.HasPrefix(u.GetKind(), "ValidatingAdmissionPolicy") {
			t.Errorf("admissionPolicy.enabled=false still renders %s", u.GetKind())
		}
	}
	dep := find(objs, "Deployment", "scoped-whatsapp-operator")
	if dep == nil {
		t.Fatal("no manager Deployment")
	}
	args := containerArgs(t, dep)
	for _, want := range []string{"--watch-namespaces=" + a + "," + b, "--cluster-wide-claims",
		"--session-image=example.com/whatsapp-operator:v0.0.0-test"} {
		if !slices.Contains(args, want) {
			t.Errorf("no %s in %v", want, args)
		}
	}
	applyAll(t, "helm-test", append(objs, restrictedNamespace(ns), restrictedNamespace(a), restrictedNamespace(b), restrictedNamespace(tenant)))

	const sa = "system:serviceaccount:" + ns + ":scoped-whatsapp-operator"
	rows := append(managerCommon(a), managerCommon(b)...)
	checkAccess(t, sa, append(rows,
		access{"create", "", "pods", "", tenant, "", false},
		access{"create", "", "pods", "", ns, "", false},
		access{"watch", "", "pods", "", "", "", false},
		access{"update", coord, "leases", "", "kube-system", "kube-controller-manager", false},
		clusterRoleBindingForSendAPI(false),
	))
}

// TestPrometheusConfig applies config/prometheus and checks that every alert reads a metric the
// manager exports, that the manager's series keep their own namespace label, and that nothing
// in it lets a monitoring agent read WhatsAppConnections (and with them the QR codes).
func TestPrometheusConfig(t *testing.T) {
	objs := decode(t, run(t, root, kustomize(t), "build", "config/prometheus"))
	applyAll(t, "install-test", append(objs, restrictedNamespace("whatsapp-operator-system")))

	known := managerMetrics(t)
	for _, want := range []string{"whatsapp_operator_connection_condition", "whatsapp_operator_connection_phase", "whatsapp_operator_reconcile_passes_total"} {
		if !known[want] {
			t.Errorf("the manager does not export %s (found %v)", want, known)
		}
	}
	for _, u := range objs {
		if u.GetKind() == "Role" || u.GetKind() == "ClusterRole" || u.GetKind() == "ConfigMap" {
			t.Errorf("config/prometheus ships %s %s: monitoring needs no RBAC of its own and no kube-state-metrics config", u.GetKind(), u.GetName())
		}
	}
	checkHonorsLabels(t, find(objs, "ServiceMonitor", "whatsapp-operator-controller-manager-metrics-monitor"))
	rule := find(objs, "PrometheusRule", "")
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	alerts := 0
	for _, g := range groups {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rules {
			r := r.(map[string]any)
			alerts++
			for _, metric := range regexp.MustCompile(`whatsapp_\w+`).FindAllString(r["expr"].(string), -1) {
				if !known[metric] {
					t.Errorf("alert %s reads %s, which nothing exports (known: %v)", r["alert"], metric, known)
				}
			}
		}
	}
	for _, want := range []string{"Conflict", "Degraded", "Disconnected"} {
		if !bytes.Contains(mustRead(t, "config/prometheus/prometheus_rule.yaml"), []byte("alert: WhatsAppConnection"+want)) {
			t.Errorf("no WhatsAppConnection%s alert", want)
		}
	}
	if alerts < 3 {
		t.Errorf("%d alerts", alerts)
	}
}

// managerMetrics are the metric names the manager's source declares (controllers' metrics files).
func managerMetrics(t *testing.T) map[string]bool {
	known := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(root, "controllers", "*metrics*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"(whatsapp_operator_\w+)"`).FindAllSubmatch(src, -1) {
			known[string(m[1])] = true
		}
	}
	return known
}

// checkHonorsLabels: the ServiceMonitor must keep the namespace label of the manager's
// per-resource series (the resource's), not overwrite it with the manager's namespace.
func checkHonorsLabels(t *testing.T, monitor *unstructured.Unstructured) {
	t.Helper()
	if monitor == nil {
		t.Fatal("no ServiceMonitor for the manager")
	}
	endpoints, _, _ := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
	if len(endpoints) == 0 {
		t.Fatalf("ServiceMonitor %s has no endpoints", monitor.GetName())
	}
	for _, e := range endpoints {
		if honor, _, _ := unstructured.NestedBool(e.(map[string]any), "honorLabels"); !honor {
			t.Errorf("ServiceMonitor %s scrapes without honorLabels: the resources' namespace label would become exported_namespace", monitor.GetName())
		}
	}
}

// TestSamples applies every config/samples object; the CRD's schema and CEL rules must accept
// them, and must reject a broken one (so acceptance means something).
func TestSamples(t *testing.T) {
	applyAll(t, "install-test", decode(t, mustRead(t, "config/crd/bases/whatsapp.waoperator.io_whatsappconnections.yaml")))
	const ns = "whatsapp-samples"
	applyAll(t, "install-test", []*unstructured.Unstructured{restrictedNamespace(ns)})
	objs := decode(t, run(t, root, kustomize(t), "build", "config/samples"))
	if find(objs, "WhatsAppConnection", "") == nil {
		t.Fatal("config/samples has no WhatsAppConnection")
	}
	for _, u := range objs {
		u.SetNamespace(ns)
	}
	applyAll(t, "install-test", objs)
	var list unstructured.UnstructuredList
	list.SetAPIVersion("whatsapp.waoperator.io/v1alpha1")
	list.SetKind("WhatsAppConnectionList")
	if err := k8sClient.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if want := len(slices.DeleteFunc(slices.Clone(objs), func(u *unstructured.Unstructured) bool { return u.GetKind() != "WhatsAppConnection" })); len(list.Items) != want {
		t.Errorf("%d WhatsAppConnections stored, want %d", len(list.Items), want)
	}

	// A DSN copied from a sample must check the server's certificate and name.
	for _, u := range objs {
		if u.GetKind() != "Secret" {
			continue
		}
		data, _, _ := unstructured.NestedStringMap(u.Object, "stringData")
		for k, v := range data {
			if strings.HasPrefix(v, "postgres") && !strings.Contains(v, "sslmode=verify-full") {
				t.Errorf("sample Secret %s key %s: a DSN without sslmode=verify-full", u.GetName(), k)
			}
		}
	}

	broken := find(objs, "WhatsAppConnection", "").DeepCopy()
	broken.SetName("broken")
	_ = unstructured.SetNestedMap(broken.Object, map[string]any{"method": "PhoneCode"}, "spec", "pairing")
	err := k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(broken), client.FieldOwner("install-test"))
	if err == nil || !strings.Contains(err.Error(), "phoneNumber is required") {
		t.Errorf("PhoneCode without phoneNumber: got %v, want the CRD's rule to reject it", err)
	}
}

// TestChartCopiesInSync: the chart's CRDs, ClusterRole and alerts are copies (make helm-sync).
func TestChartCopiesInSync(t *testing.T) {
	const fix = "; run make helm-sync"
	bases, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	copies, _ := filepath.Glob(filepath.Join(root, "charts", "whatsapp-operator", "crds", "*.yaml"))
	if len(bases) == 0 || len(bases) != len(copies) {
		t.Fatalf("%d CRDs in config/crd/bases, %d in the chart%s", len(bases), len(copies), fix)
	}
	for _, b := range bases {
		rel := "charts/whatsapp-operator/crds/" + filepath.Base(b)
		if !bytes.Equal(mustRead(t, "config/crd/bases/"+filepath.Base(b)), mustRead(t, rel)) {
			t.Errorf("%s differs from config/crd/bases%s", rel, fix)
		}
	}
	if !bytes.Equal(mustRead(t, "config/rbac/role.yaml"), mustRead(t, "charts/whatsapp-operator/files/manager-role.yaml")) {
		t.Errorf("the chart's manager role differs from config/rbac/role.yaml%s", fix)
	}
	if !bytes.Equal(mustRead(t, "config/admission/policy.yaml"), mustRead(t, "charts/whatsapp-operator/files/admission-policy.yaml")) {
		t.Errorf("the chart's admission policy differs from config/admission/policy.yaml%s", fix)
	}
	var rule struct{ Spec any }
	var chart any
	if err := yaml.Unmarshal(mustRead(t, "config/prometheus/prometheus_rule.yaml"), &rule); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(mustRead(t, "charts/whatsapp-operator/files/alerts.yaml"), &chart); err != nil {
		t.Fatal(err)
	}
	a, _ := yaml.Marshal(rule.Spec)
	b, _ := yaml.Marshal(chart)
	if !bytes.Equal(a, b) {
		t.Errorf("the chart's alerts differ from config/prometheus%s", fix)
	}
}

func mustRead(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func restrictedNamespace(name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(name)
	u.SetLabels(map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	return u
}

func podTemplate(t testing.TB, dep *unstructured.Unstructured) corev1.PodTemplateSpec {
	t.Helper()
	raw, _, _ := unstructured.NestedMap(dep.Object, "spec", "template")
	var tpl corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &tpl); err != nil {
		t.Fatal(err)
	}
	return tpl
}

func containerArgs(t testing.TB, dep *unstructured.Unstructured) []string {
	return podTemplate(t, dep).Spec.Containers[0].Args
}

// checkManager asserts what running the manager safely needs: leader election among the
// replicas, probes, and the image asked for.
func checkManager(t testing.TB, dep *unstructured.Unstructured, image string, replicas int32) {
	t.Helper()
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(dep.Object, &d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
		t.Errorf("replicas %v, want %d", d.Spec.Replicas, replicas)
	}
	c := podTemplate(t, dep).Spec.Containers[0]
	if c.Image != image {
		t.Errorf("image %q, want %q", c.Image, image)
	}
	if !slices.Contains(c.Args, "--leader-elect") {
		t.Errorf("no --leader-elect in %v", c.Args)
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Error("the manager needs liveness and readiness probes")
	}
}

// checkPodSecurity has the API server's PodSecurity admission judge the manager's pod in a
// namespace that enforces the restricted standard (dry run: nothing runs it). A privileged
// pod must be refused there, so that the acceptance means something.
func checkPodSecurity(t testing.TB, dep *unstructured.Unstructured, ns string) {
	t.Helper()
	tpl := podTemplate(t, dep)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "manager-", Namespace: ns, Labels: tpl.Labels}, Spec: tpl.Spec}
	if err := k8sClient.Create(ctx, pod, client.DryRunAll); err != nil {
		t.Errorf("the manager's pod breaks the restricted Pod Security Standard: %v", err)
	}
	bad := pod.DeepCopy()
	bad.Spec.SecurityContext = nil
	bad.Spec.Containers[0].SecurityContext = nil
	if err := k8sClient.Create(ctx, bad, client.DryRunAll); err == nil || !strings.Contains(err.Error(), "restricted") {
		t.Errorf("PodSecurity admission did not refuse a non-compliant pod: %v", err)
	}
}
