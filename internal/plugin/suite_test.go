package plugin_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/plugin"
)

// The plugin is tested against a real API server: the merge patches it sends must pass the
// CRD's validation, and the status it reads is written the way the session and the
// controller write it (server-side apply under their field managers).

const (
	sessionManager    = "whatsapp-session"
	controllerManager = "whatsapp-controller"
	poll              = 50 * time.Millisecond
)

var (
	testEnv    *envtest.Environment
	k8sClient  client.Client
	ctx        context.Context
	cancel     context.CancelFunc
	kubeconfig string
)

func TestPlugin(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "kubectl-whatsapp Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.TODO())

	// Binaries come from KUBEBUILDER_ASSETS (make test sets it); nothing is downloaded.
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred())

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(whatsappv1alpha1.AddToScheme(scheme)).To(Succeed())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// The command tests connect the way kubectl does: through a kubeconfig file.
	admin, err := testEnv.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	Expect(err).NotTo(HaveOccurred())
	raw, err := admin.KubeConfig()
	Expect(err).NotTo(HaveOccurred())
	kubeconfig = filepath.Join(GinkgoT().TempDir(), "kubeconfig")
	Expect(os.WriteFile(kubeconfig, raw, 0o600)).To(Succeed())
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "plugin-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func newConnection(ns, name string, pairing whatsappv1alpha1.PairingSpec) plugin.Target {
	wac := &whatsappv1alpha1.WhatsAppConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       whatsappv1alpha1.WhatsAppConnectionSpec{Pairing: pairing},
	}
	Expect(k8sClient.Create(ctx, wac)).To(Succeed())
	return plugin.Target{Client: k8sClient, Namespace: ns, Name: name}
}

func get(t plugin.Target) *whatsappv1alpha1.WhatsAppConnection {
	wac := &whatsappv1alpha1.WhatsAppConnection{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: t.Namespace, Name: t.Name}, wac)).To(Succeed())
	return wac
}

// reportAsSession writes status.connection as the session runtime does.
func reportAsSession(t plugin.Target, conn whatsappv1alpha1.ConnectionStatus) {
	conn.Holder = &whatsappv1alpha1.Holder{Pod: t.Name + "-session", UID: "uid-1"}
	c, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&conn)
	Expect(err).NotTo(HaveOccurred())
	applyStatus(t, sessionManager, map[string]any{"connection": c})
}

// reportAsController writes the controller's part of the status: phase, account, conditions.
func reportAsController(t plugin.Target, phase whatsappv1alpha1.Phase, account string, conds ...metav1.Condition) {
	st := whatsappv1alpha1.WhatsAppConnectionStatus{Phase: phase, Account: account, Conditions: conds}
	for i := range st.Conditions {
		st.Conditions[i].LastTransitionTime = metav1.Now()
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&st)
	Expect(err).NotTo(HaveOccurred())
	applyStatus(t, controllerManager, u)
}

func applyStatus(t plugin.Target, manager string, status map[string]any) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": whatsappv1alpha1.GroupVersion.String(),
		"kind":       "WhatsAppConnection",
		"metadata":   map[string]any{"namespace": t.Namespace, "name": t.Name},
		"status":     status,
	}}
	Expect(k8sClient.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(manager), client.ForceOwnership)).To(Succeed())
}

func condition(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg}
}

// run starts a waiting command and returns a channel with its result.
func run(f func() error) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer GinkgoRecover()
		done <- f()
	}()
	return done
}
