package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/internal/testutil"
)

const moduleRoot = "../.."

// The whole of `make run FAKE_WHATSAPP=1`, in-process, as the README walks through it: the
// written kubeconfig reaches the embedded API server, the sample gets a session pod that runs as
// a local process and shows a QR, the fake phone scans it, and Ctrl-C (ctx) leaves no process
// behind.
func TestLocalStackWithFakeWhatsApp(t *testing.T) {
	g := NewWithT(t)
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: `make test-e2e` sets it (`make envtest` prints the directory)")
	}
	logs := captureLogs(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Built before any clock starts: a cold build on a busy machine can take longer than the
	// readiness window below, which is about the stack, not the compiler.
	dir := t.TempDir()
	sessionBin := filepath.Join(dir, "bin", "session")
	if err := buildSession(ctx, moduleRoot, sessionBin, true); err != nil {
		t.Fatalf("go build ./cmd/session: %v", err)
	}
	ready := make(chan readyInfo, 1)
	var out testutil.SyncBuffer
	o := options{
		Dir:             dir,
		SessionBinary:   sessionBin,
		ModuleRoot:      moduleRoot,
		Assets:          os.Getenv("KUBEBUILDER_ASSETS"),
		FakeWhatsApp:    true,
		FakeControlAddr: "127.0.0.1:0",
		Out:             &out,
		ready:           func(i readyInfo) { ready <- i },
	}
	var runErr error
	stopped := make(chan struct{})
	go func() { runErr = run(ctx, o); close(stopped) }()
	// On failure too: the stack must be gone before t.TempDir is removed.
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(45 * time.Second):
		}
	})

	var info readyInfo
	select {
	case info = <-ready:
	case <-stopped:
		t.Fatalf("run ended before it was ready: %v\n%s", runErr, logs)
	case <-time.After(75 * time.Second):
		t.Fatalf("not ready within 75 s\n%s", logs)
	}
	g.Expect(out.String()).To(ContainSubstring("export KUBECONFIG=" + info.Kubeconfig))
	g.Expect(out.String()).To(ContainSubstring(info.FakeControlURL + "/scan"))

	// A second make run must not wipe this one's pod folders.
	g.Expect(run(ctx, o)).To(MatchError(ContainSubstring("in use")))

	// make run's switch: with this kubeconfig, a second `make run` would see a cluster.
	t.Setenv("KUBECONFIG", info.Kubeconfig)
	g.Expect(probeCluster()).To(Succeed())

	c := clientFor(g, info.Kubeconfig)
	wac := sample(g)
	g.Expect(c.Create(ctx, wac)).To(Succeed())

	pod := &corev1.Pod{}
	g.Eventually(func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: wac.Namespace, Name: wac.Name + "-session"}, pod)
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())

	// Polled: a failed read is retried by Eventually, not fatal.
	get := func() (*whatsappv1alpha1.WhatsAppConnection, error) {
		got := &whatsappv1alpha1.WhatsAppConnection{}
		return got, c.Get(ctx, client.ObjectKeyFromObject(wac), got)
	}
	qrCode := func() (string, error) {
		got, err := get()
		if err != nil || got.Status.Connection == nil {
			return "", err
		}
		return got.Status.Connection.QRCode, nil
	}
	phase := func() (whatsappv1alpha1.Phase, error) {
		got, err := get()
		return got.Status.Phase, err
	}

	// The session process, run by the pod runner, reaches the fake WhatsApp and publishes its QR.
	g.Eventually(qrCode, 45*time.Second, 200*time.Millisecond).ShouldNot(BeEmpty(), func() string { return logs.String() })
	g.Eventually(phase, 10*time.Second, 200*time.Millisecond).Should(Equal(whatsappv1alpha1.PhasePairing))
	g.Expect(childProcesses(g)).To(ContainElements("kube-apiserver", "etcd", "session"))

	// The printed curl line: the fake phone scans the QR through the control API.
	qr, err := qrCode()
	g.Expect(err).NotTo(HaveOccurred())
	body, err := json.Marshal(map[string]string{"phone": fakePhone, "qr": qr})
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := http.Post(info.FakeControlURL+"/scan", "application/json", bytes.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Eventually(phase, 30*time.Second, 200*time.Millisecond).Should(Equal(whatsappv1alpha1.PhaseConnected))

	// Delete and apply again, a common local loop: with no kube-controller-manager a claim
	// would keep its protection finalizer and block the new resource's store.
	g.Expect(c.Delete(ctx, wac)).To(Succeed())
	g.Eventually(func() error {
		return c.Get(ctx, client.ObjectKeyFromObject(wac), &whatsappv1alpha1.WhatsAppConnection{})
	}, 30*time.Second, 200*time.Millisecond).Should(Satisfy(apierrors.IsNotFound))
	wac = sample(g)
	g.Expect(c.Create(ctx, wac)).To(Succeed())
	g.Eventually(phase, 45*time.Second, 200*time.Millisecond).Should(Equal(whatsappv1alpha1.PhasePairing), func() string { return logs.String() })

	cancel()
	select {
	case <-stopped:
		g.Expect(runErr).NotTo(HaveOccurred())
	case <-time.After(45 * time.Second):
		t.Fatalf("run did not stop within 45 s\n%s", logs)
	}
	g.Expect(childProcesses(g)).To(BeEmpty(), "every process the stack started has ended and been reaped")
	g.Expect(probeCluster()).NotTo(Succeed(), "the API server is gone")
	u, err := url.Parse(info.FakeControlURL)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = net.DialTimeout("tcp", u.Host, time.Second)
	g.Expect(err).To(HaveOccurred(), "the fake WhatsApp control API is closed")
}

func clientFor(g Gomega, kubeconfig string) client.Client {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(whatsappv1alpha1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	return c
}

// sample is the resource the README tells the user to apply.
func sample(g Gomega) *whatsappv1alpha1.WhatsAppConnection {
	data, err := os.ReadFile(filepath.Join(moduleRoot, sampleFile))
	g.Expect(err).NotTo(HaveOccurred())
	wac := &whatsappv1alpha1.WhatsAppConnection{}
	g.Expect(yaml.UnmarshalStrict(data, wac)).To(Succeed())
	g.Expect(wac.Name).To(Equal(sampleName))
	wac.Namespace = "default" // what kubectl apply picks
	return wac
}

// childProcesses lists the command names of this test process's children, zombies included:
// a child that ended but was not waited for was not stopped properly either.
func childProcesses(g Gomega) []string {
	entries, err := os.ReadDir("/proc")
	g.Expect(err).NotTo(HaveOccurred())
	self := strconv.Itoa(os.Getpid())
	var names []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid …; comm may contain spaces and parentheses.
		s := string(stat)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if len(fields) >= 2 && fields[1] == self {
			names = append(names, s[open+1:closing])
		}
	}
	return names
}

// captureLogs keeps the stack's logs out of a passing run's output and shows them on failure.
func captureLogs(t *testing.T) *testutil.SyncBuffer {
	logs := &testutil.SyncBuffer{}
	ctrl.SetLogger(zap.New(zap.WriteTo(logs), zap.UseDevMode(true)))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	return logs
}
