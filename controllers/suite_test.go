//go:build !unit

package controllers

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

// The suite runs the reconciler in a real manager against a real kube-apiserver and etcd.
// envtest has no kubelet: tests play the kubelet (pod phases) and the session (status.connection).

const (
	testLogoutTimeout = 4 * time.Second
	testLeaseDuration = 3 * time.Second
	testCrashBackoff  = 3 * time.Second
	sessionManager    = "whatsapp-session"
)

var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	scheme    = runtime.NewScheme()
	ctx       context.Context
	cancel    context.CancelFunc
	nsCounter atomic.Int64
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	// gomega's 1 s default is a flake on two busy cores (a pass, a cache update and a status
	// write in a row): waits end as soon as they succeed, so a longer bound costs nothing.
	SetDefaultEventuallyTimeout(10 * time.Second)
	ctx, cancel = context.WithCancel(context.TODO())
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(whatsappv1alpha1.AddToScheme(scheme))

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())

	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// The suite's main manager exports the condition and phase metrics, as cmd/manager's does.
	startManager(ctx, func(m *managerSetup) { m.Options.StateMetrics = metrics.Registry })
})

var _ = AfterSuite(func() {
	cancel()
	Expect(testEnv.Stop()).To(Succeed())
})

// testManagerLabel marks the WhatsAppConnections of a manager started with other options (see
// otherManager): the suite's usual managers do not see them, so two managers never disagree.
const testManagerLabel = "test.waoperator.io/manager"

// startManager runs a manager with the reconciler until ctx ends. Several may run at once: the
// controller must stay correct without manager leader election. Unless tune says otherwise, it
// ignores the WhatsAppConnections labelled testManagerLabel.
func startManager(ctx context.Context, tune ...func(*managerSetup)) {
	notLabelled, err := labels.NewRequirement(testManagerLabel, selection.DoesNotExist, nil)
	Expect(err).NotTo(HaveOccurred())
	opts := Options{
		Session: SessionConfig{
			Image:         "example.com/whatsapp-operator:test",
			Resources:     DefaultOptions().Session.Resources,
			LeaseDuration: testLeaseDuration,
			RenewDeadline: 2 * time.Second,
			RetryPeriod:   time.Second,
		},
		LogoutTimeout:           testLogoutTimeout,
		CrashBackoff:            testCrashBackoff,
		CrashBackoffMax:         4 * testCrashBackoff,
		LostNodeRecovery:        true,
		MaxConcurrentReconciles: 4,
	}
	setup := &managerSetup{Cache: CacheOptions(), Connections: labels.NewSelector().Add(*notLabelled), Options: opts, Config: cfg}
	for _, t := range tune {
		t(setup)
	}
	// One entry for the kind: ByObject is keyed by pointer, and of two entries for one kind the
	// cache takes either (the suite once ran a manager that saw the wrong resources).
	for obj := range setup.Cache.ByObject {
		if _, ok := obj.(*whatsappv1alpha1.WhatsAppConnection); ok {
			delete(setup.Cache.ByObject, obj)
		}
	}
	setup.Cache.ByObject[&whatsappv1alpha1.WhatsAppConnection{}] = cache.ByObject{Label: setup.Connections}
	mgr, err := NewManager(ctx, setup.Config, ManagerOptions{
		Reconciler: setup.Options,
		Tune: func(o *ctrl.Options) {
			o.Cache = setup.Cache
			// Several managers run in one test process; each registers the same controller name.
			o.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
		},
	})
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
}

// newNamespace gives each test its own namespace.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("t%d-%04d", GinkgoParallelProcess(), nsCounter.Add(1))}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func resourceQuantity(s string) *resource.Quantity {
	q := resource.MustParse(s)
	return &q
}

// newConnection creates a WhatsAppConnection after applying the mutations.
func newConnection(ns, name string, mutate ...func(*whatsappv1alpha1.WhatsAppConnection)) *whatsappv1alpha1.WhatsAppConnection {
	wac := &whatsappv1alpha1.WhatsAppConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, m := range mutate {
		m(wac)
	}
	Expect(k8sClient.Create(ctx, wac)).To(Succeed())
	return wac
}

func get(ns, name string) *whatsappv1alpha1.WhatsAppConnection {
	wac := &whatsappv1alpha1.WhatsAppConnection{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, wac)).To(Succeed())
	return wac
}

// update changes a resource, retrying on conflicts with the controller's writes.
func update(ns, name string, change func(*whatsappv1alpha1.WhatsAppConnection)) *whatsappv1alpha1.WhatsAppConnection {
	wac := &whatsappv1alpha1.WhatsAppConnection{}
	Eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, wac); err != nil {
			return err
		}
		change(wac)
		return k8sClient.Update(ctx, wac)
	}).Should(Succeed())
	return wac
}

// sessionPod waits for the session pod of a resource and returns it. The wait allows for a
// manager a spec has just started (otherManager): its caches sync before its first pass.
func sessionPod(ns, name string) *corev1.Pod {
	pod := &corev1.Pod{}
	Eventually(func() error {
		return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + sessionSuffix}, pod)
	}, 10*time.Second).Should(Succeed())
	return pod
}

// reportAsSession writes status.connection the way the session runtime does: server-side apply
// with its own field manager, naming the pod as holder.
func reportAsSession(ns, name string, pod *corev1.Pod, conn whatsappv1alpha1.ConnectionStatus) {
	conn.Holder = &whatsappv1alpha1.Holder{Pod: pod.Name, UID: string(pod.UID)}
	c, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&conn)
	Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": whatsappv1alpha1.GroupVersion.String(),
		"kind":       "WhatsAppConnection",
		"metadata":   map[string]any{"namespace": ns, "name": name},
		"status":     map[string]any{"connection": c},
	}}
	Expect(k8sClient.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(sessionManager), client.ForceOwnership)).To(Succeed())
}

// setPodPhase plays the kubelet.
func setPodPhase(pod *corev1.Pod, phase corev1.PodPhase, exitCode int32) {
	Eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		pod.Status.Phase = phase
		if phase == corev1.PodFailed || phase == corev1.PodSucceeded {
			pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
				Name: sessionContainer, Image: pod.Spec.Containers[0].Image, ImageID: "x",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: exitCode, Reason: "Error", FinishedAt: metav1.Now(),
				}},
			}}
		}
		return k8sClient.Status().Update(ctx, pod)
	}).Should(Succeed())
}

// setContainerWaiting plays a kubelet that cannot start the session container.
func setContainerWaiting(pod *corev1.Pod, reason, message string) {
	Eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		pod.Status.Phase = corev1.PodPending
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: sessionContainer, Image: pod.Spec.Containers[0].Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
		}}
		return k8sClient.Status().Update(ctx, pod)
	}).Should(Succeed())
}

// exitPod plays the kubelet reporting the session container terminated after running for ranFor.
func exitPod(pod *corev1.Pod, exitCode int32, ranFor time.Duration) {
	Eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		now := time.Now()
		pod.Status.Phase = corev1.PodFailed
		pod.Status.StartTime = &metav1.Time{Time: now.Add(-ranFor)}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: sessionContainer, Image: pod.Spec.Containers[0].Image, ImageID: "x",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: exitCode, Reason: "Error", StartedAt: metav1.Time{Time: now.Add(-ranFor)}, FinishedAt: metav1.Time{Time: now},
			}},
		}}
		return k8sClient.Status().Update(ctx, pod)
	}).Should(Succeed())
}

// holdLease plays the session: it writes the Lease as the pod's elector does, for seconds.
func holdLease(ns, name, holder string, seconds int32) {
	Eventually(func() error {
		lease := &coordinationv1.Lease{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + sessionSuffix}, lease); err != nil {
			return err
		}
		at := metav1.NewMicroTime(time.Now())
		lease.Spec.HolderIdentity = ptr.To(holder)
		lease.Spec.LeaseDurationSeconds = ptr.To(seconds)
		lease.Spec.AcquireTime, lease.Spec.RenewTime = &at, &at
		return k8sClient.Update(ctx, lease)
	}).Should(Succeed())
}

func leaseHolder(ns, name string) func() string {
	return func() string {
		lease := &coordinationv1.Lease{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + sessionSuffix}, lease); err != nil {
			return "<" + err.Error() + ">"
		}
		return ptr.Deref(lease.Spec.HolderIdentity, "")
	}
}

func identityOf(pod *corev1.Pod) string { return sessionenv.LeaseIdentity(pod.Name, string(pod.UID)) }

func phaseOf(ns, name string) func() whatsappv1alpha1.Phase {
	return func() whatsappv1alpha1.Phase {
		return get(ns, name).Status.Phase
	}
}

// condition returns a func for Eventually that yields the condition of that type (or an empty one).
func condition(ns, name, typ string) func() metav1.Condition {
	return func() metav1.Condition {
		for _, c := range get(ns, name).Status.Conditions {
			if c.Type == typ {
				return c
			}
		}
		return metav1.Condition{}
	}
}

// podUID returns the UID of the session pod, or "" when there is none.
func podUID(ns, name string) func() string {
	return func() string {
		pod := &corev1.Pod{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + sessionSuffix}, pod); err != nil {
			return ""
		}
		return string(pod.UID)
	}
}

// warningEvents lists the reasons of Warning events about a resource.
func warningEvents(ns, name string) func() []string {
	return func() []string {
		list := &corev1.EventList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		var reasons []string
		for _, e := range list.Items {
			if e.Type == corev1.EventTypeWarning && e.InvolvedObject.Name == name {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}
}

// managerSetup is what a test may change about a manager before it starts.
type managerSetup struct {
	Cache cache.Options
	// Connections selects the WhatsAppConnections the manager sees.
	Connections labels.Selector
	Options     Options
	Config      *rest.Config
}

// otherManager starts, for the rest of the test, a manager that sees only the
// WhatsAppConnections labelled testManagerLabel=name, with the setup changed by tune. It
// returns the mutation that labels a resource for it.
func otherManager(name string, tune func(*managerSetup)) func(*whatsappv1alpha1.WhatsAppConnection) {
	mgrCtx, stopMgr := context.WithCancel(ctx)
	DeferCleanup(stopMgr)
	startManager(mgrCtx, func(m *managerSetup) {
		tune(m)
		m.Connections = labels.SelectorFromSet(labels.Set{testManagerLabel: name})
	})
	return func(w *whatsappv1alpha1.WhatsAppConnection) {
		if w.Labels == nil {
			w.Labels = map[string]string{}
		}
		w.Labels[testManagerLabel] = name
	}
}
