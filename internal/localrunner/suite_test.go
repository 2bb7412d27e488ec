package localrunner

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// The suite runs a Runner against a real kube-apiserver with nothing else: no scheduler, no
// kubelet. Pods run the test binary itself (see helper_test.go).

const helperCommand = "/testprog"

var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	workDir   string
	cancel    context.CancelFunc
	runnerErr chan error
	nsCounter atomic.Int64
)

func TestLocalRunner(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Local Runner Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))

	testEnv = &envtest.Environment{}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	workDir, err = os.MkdirTemp("", "localrunner-test-")
	Expect(err).NotTo(HaveOccurred())
	var ctx context.Context
	ctx, cancel = context.WithCancel(context.Background())
	runnerErr = startRunner(ctx, "local", filepath.Join(workDir, "local"))
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
		Eventually(runnerErr, 60*time.Second).Should(Receive(BeNil()))
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
	_ = os.RemoveAll(workDir)
})

func startRunner(ctx context.Context, node, dir string) chan error {
	_, done := startRunnerR(ctx, node, dir)
	return done
}

// startRunnerR is startRunner that also returns the Runner, for the tests that drive it.
func startRunnerR(ctx context.Context, node, dir string) (*Runner, chan error) {
	r, err := New(recording(cfg), Options{
		NodeName: node,
		WorkDir:  dir,
		Commands: map[string]string{helperCommand: os.Args[0], "/broken": filepath.Join(dir, "no-such-program")},
		ExtraEnv: []string{helperEnv + "=1"},
		Logger:   logf.Log.WithName(node),
	})
	Expect(err).NotTo(HaveOccurred())
	done := make(chan error, 1)
	go func() {
		defer GinkgoRecover()
		done <- r.Start(ctx)
	}()
	return r, done
}

// runnerRequests are the requests the runners sent ("METHOD path", a watch with the media types
// and the encoding it accepts), for the specs that check
// what a runner asks of the API server.
var runnerRequests struct {
	sync.Mutex
	sent []string
}

// recording is cfg with every request recorded in runnerRequests.
func recording(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			runnerRequests.Lock()
			what := req.Method + " " + req.URL.Path
			if req.URL.Query().Get("watch") == "true" {
				what = "WATCH " + req.URL.Path + " Accept: " + req.Header.Get("Accept") + " Accept-Encoding: " + req.Header.Get("Accept-Encoding")
			}
			runnerRequests.sent = append(runnerRequests.sent, what)
			runnerRequests.Unlock()
			return rt.RoundTrip(req)
		})
	})
	return c
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// requestsFor are the recorded runner requests whose path contains part.
func requestsFor(part string) []string {
	runnerRequests.Lock()
	defer runnerRequests.Unlock()
	var out []string
	for _, r := range runnerRequests.sent {
		if strings.Contains(r, part) {
			out = append(out, r)
		}
	}
	return out
}

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("lr-%d", nsCounter.Add(1))}}
	Expect(k8sClient.Create(context.Background(), ns)).To(Succeed())
	return ns.Name
}

// helperPod is a pod the runner binds (it carries the default selector's label), with a
// health and a metrics port, a readiness probe and a claim mounted at /data.
func helperPod(ns, name, claim string, args ...string) *corev1.Pod {
	grace := int64(30)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels:      map[string]string{"app.kubernetes.io/managed-by": "whatsapp-operator", "conn": name + "-label"},
			Annotations: map[string]string{"note": name + "-annotation"},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName:            "session",
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name:    "main",
				Image:   "example.invalid/helper:latest",
				Command: []string{helperCommand},
				Args:    append([]string{"--health=:8081", "--metrics=0.0.0.0:8080", "--out=/data"}, args...),
				Env: []corev1.EnvVar{
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					{Name: "WA_SQLITE_PATH", Value: "/data/device.db"},
				},
				Ports: []corev1.ContainerPort{
					{Name: "health", ContainerPort: 8081},
					{Name: "metrics", ContainerPort: 8080},
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstrName("health")}},
					PeriodSeconds: 1,
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "tmp", MountPath: "/tmp"}},
			}},
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
}

func claimDir(node, ns, claim string) string {
	return filepath.Join(workDir, node, "volumes", ns, claim)
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

func getPod(ns, name string) func() (*corev1.Pod, error) {
	return func() (*corev1.Pod, error) {
		pod := &corev1.Pod{}
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pod)
		return pod, err
	}
}

// pidFrom reads a pid the helper wrote, waiting until it is there.
func pidFrom(path string) int {
	var pid int
	Eventually(func() error {
		var err error
		pid, err = strconv.Atoi(strings.TrimSpace(readFile(path)))
		return err
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	return pid
}

// procState is the /proc state letter of pid (T while stopped), 0 when it is gone.
func procState(pid int) byte {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}

// alive: a zombie counts as gone, it no longer runs.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
