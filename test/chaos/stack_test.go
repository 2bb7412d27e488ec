package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/controllers"
	"github.com/waoperator/whatsapp-operator/internal/localrunner"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
	"github.com/waoperator/whatsapp-operator/internal/waendpoint"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

const moduleRoot = "../.."

// Session timings: the defaults (internal/sessionenv: Lease 40 s, renew deadline 32 s, retry
// 10 s), so that the figures the suite prints are the ones a user gets, and the 10 s API server
// stall fault is ridden out by the arithmetic written next to those defaults (retry 10 + stall 10
// + retry interval 1 + request timeout 2 ≤ 32, with the 9 s to spare that a kube-apiserver woken
// from SIGSTOP on two busy cores needs).
var sessionConfig = controllers.SessionConfig{
	Image:         "local/whatsapp-operator:dev",
	LeaseDuration: sessionenv.DefaultLeaseDuration,
	RenewDeadline: sessionenv.DefaultRenewDeadline,
	RetryPeriod:   sessionenv.DefaultRetryPeriod,
}

// nodes are the local runner's nodes: two, so that a session whose node is lost has somewhere
// else to go.
var nodes = []string{"node-a", "node-b"}

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(whatsappv1alpha1.AddToScheme(s))
	return s
}()

// stack is the local operator stack with every part restartable on its own.
type stack struct {
	dir    string
	env    *envtest.Environment
	cfg    *rest.Config
	c      client.Client
	fw     *fakewa.Server
	census *census

	proxiesMu sync.Mutex
	proxies   map[types.UID]*cutProxy

	mgrMu     sync.Mutex
	mgrCancel context.CancelFunc
	mgrDone   chan error

	runners    map[string]*localrunner.Runner
	stopRunner context.CancelFunc
	runnerDone chan error
	stopWatch  context.CancelFunc
	apiKills   int // restarts where kube-apiserver had to be killed
	// lastAPIRestart splits the last API server restart into its stop and start, the part of
	// its failover that is not the operator's.
	lastAPIRestart string
}

func startStack(t *testing.T, dir string) *stack {
	t.Helper()
	s := &stack{dir: dir, proxies: map[types.UID]*cutProxy{}}
	t.Cleanup(s.stop)

	logFile, err := os.Create(filepath.Join(dir, "stack.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logFile.Close() })
	logf.SetLogger(zap.New(zap.WriteTo(logFile), zap.UseDevMode(true)))

	sessionBin := filepath.Join(dir, "session")
	build := exec.Command("go", "build", "-tags", "fakewa", "-o", sessionBin, "./cmd/session")
	build.Dir = moduleRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the session: %v\n%s", err, out)
	}

	s.fw, err = fakewa.Start(fakewa.Options{
		Logger: slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "fakewa"),
	})
	if err != nil {
		t.Fatal(err)
	}
	fwConfig := filepath.Join(dir, "fakewa.json")
	if err := s.fw.WriteClientConfig(fwConfig); err != nil {
		t.Fatal(err)
	}

	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: `make test-chaos` sets it (`make envtest` prints the directory)")
	}
	s.env = &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(moduleRoot, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		UseExistingCluster:    ptr.To(false),
		// kube-apiserver's graceful shutdown outlasts envtest's 20 s default with watches open;
		// a restart fault should not take that long, and a SIGKILL after 5 s is a fault too.
		ControlPlaneStopTimeout: 5 * time.Second,
		// envtest's 20 s default start timeout is not enough for a kube-apiserver on two cores
		// that other builds keep busy (seen at load 25: five attempts of 20 s all timed out).
		ControlPlaneStartTimeout: 2 * time.Minute,
	}
	api := s.env.ControlPlane.GetAPIServer()
	// A CertDir of our own survives Stop, so a restarted API server serves the same
	// certificate on the same port and every client's rest.Config stays valid; envtest
	// regenerates the serving CA in a directory it allocated itself.
	api.CertDir = filepath.Join(dir, "apiserver")
	if err := os.MkdirAll(api.CertDir, 0o700); err != nil {
		t.Fatal(err)
	}
	api.Out, api.Err = logFile, logFile
	// No kube-controller-manager removes the pvc-protection finalizer (as in cmd/localdev).
	api.Configure().Append("disable-admission-plugins", "StorageObjectInUseProtection")
	s.cfg, err = s.env.Start()
	if err != nil {
		t.Fatalf("envtest (KUBEBUILDER_ASSETS=%s): %v", assets, err)
	}
	s.c, err = client.New(s.cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}

	s.census = newCensus()
	cs, err := kubernetes.NewForConfig(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	s.stopWatch = stopWatch
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = whatsappv1alpha1.ConnectionLabel
	}))
	podInf := factory.Core().V1().Pods().Informer()
	if _, err := podInf.AddEventHandler(s.census.handler()); err != nil {
		t.Fatal(err)
	}
	factory.Start(watchCtx.Done())
	if !cache.WaitForCacheSync(watchCtx.Done(), podInf.HasSynced) {
		t.Fatal("pod census did not sync")
	}

	runnerCtx, stopRunner := context.WithCancel(context.Background())
	s.stopRunner, s.runnerDone, s.runners = stopRunner, make(chan error, len(nodes)), map[string]*localrunner.Runner{}
	for _, node := range nodes {
		runner, err := localrunner.New(s.cfg, localrunner.Options{
			NodeName:     node,
			WorkDir:      filepath.Join(dir, "run"),
			Commands:     map[string]string{"/session": sessionBin},
			ExtraEnv:     []string{waendpoint.ConfigEnv + "=" + fwConfig},
			APIServerFor: s.apiServerFor,
			Logger:       ctrl.Log.WithName("runner"),
		})
		if err != nil {
			t.Fatal(err)
		}
		s.runners[node] = runner
		go func() { s.runnerDone <- runner.Start(runnerCtx) }()
	}

	if err := s.startManager(); err != nil {
		t.Fatal(err)
	}
	return s
}

// apiServerFor gives each session pod a proxy of its own, so one pod can be partitioned.
func (s *stack) apiServerFor(pod *corev1.Pod) string {
	s.proxiesMu.Lock()
	defer s.proxiesMu.Unlock()
	if p, ok := s.proxies[pod.UID]; ok {
		return p.URL()
	}
	u, err := url.Parse(s.cfg.Host)
	if err != nil {
		return ""
	}
	p, err := newCutProxy(u.Host)
	if err != nil {
		return ""
	}
	s.proxies[pod.UID] = p
	return p.URL()
}

func (s *stack) proxy(uid types.UID) *cutProxy {
	s.proxiesMu.Lock()
	defer s.proxiesMu.Unlock()
	return s.proxies[uid]
}

// startManager runs the controller as cmd/manager would, with the chaos timings. A manager
// can start once, so each restart builds a new one; controller-runtime refuses a second
// controller of the same name in one process unless told the first is gone.
func (s *stack) startManager() error {
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := controllers.NewManager(ctx, s.cfg, controllers.ManagerOptions{
		Reconciler: controllers.Options{
			Session:       sessionConfig,
			LogoutTimeout: 10 * time.Second,
			// The schedule hits a connection again soon after it recovered, which the controller
			// rightly counts as exits in a row; a short backoff keeps that from dominating the
			// figures (bench -only failover measures kill -9 with the default backoff).
			CrashBackoff:            time.Second,
			CrashBackoffMax:         4 * time.Second,
			LostNodeRecovery:        true,
			MaxConcurrentReconciles: 4,
		},
		Tune: func(o *ctrl.Options) {
			o.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
			o.GracefulShutdownTimeout = ptr.To(10 * time.Second)
		},
	})
	if err != nil {
		cancel()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	syncCtx, cancelSync := context.WithTimeout(ctx, time.Minute)
	defer cancelSync()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		cancel()
		return errors.Join(errors.New("manager cache did not sync"), <-done)
	}
	s.mgrMu.Lock()
	s.mgrCancel, s.mgrDone = cancel, done
	s.mgrMu.Unlock()
	return nil
}

func (s *stack) stopManager() error {
	s.mgrMu.Lock()
	cancel, done := s.mgrCancel, s.mgrDone
	s.mgrCancel, s.mgrDone = nil, nil
	s.mgrMu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("manager: %w", err)
	}
	return nil
}

// restartAPIServer stops kube-apiserver and starts it again on the same address with the same
// etcd, certificates and client CA.
func (s *stack) restartAPIServer() error {
	api := s.env.ControlPlane.GetAPIServer()
	stopping := time.Now()
	if err := api.Stop(); err != nil {
		// envtest has sent SIGKILL after StopTimeout: a harder crash, but still the fault
		// intended. Anything else means the process may be alive.
		if !strings.HasPrefix(err.Error(), "timeout waiting for process kube-apiserver to stop") || strings.Contains(err.Error(), "unable to kill") {
			return fmt.Errorf("stopping kube-apiserver: %w", err)
		}
		s.apiKills++
	}
	// The new process must be able to bind the same port: wait until the old one has let go.
	u, err := url.Parse(s.cfg.Host)
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err != nil {
			break
		}
		_ = conn.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("the stopped kube-apiserver still listens on %s", u.Host)
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := s.cfg.Host
	starting := time.Now()
	if err := api.Start(); err != nil {
		return fmt.Errorf("starting kube-apiserver: %w", err)
	}
	s.lastAPIRestart = fmt.Sprintf("stop %s, start %s", starting.Sub(stopping).Round(time.Millisecond), time.Since(starting).Round(time.Millisecond))
	if after := api.SecureServing.URL("https", "").String(); after != before && after+"/" != before && after != before+"/" {
		return fmt.Errorf("kube-apiserver came back on %s, not %s", after, before)
	}
	return nil
}

// stallAPIServer freezes kube-apiserver (SIGSTOP) for d: it keeps its sockets and answers
// nothing, as an overloaded or paused control plane does; then it resumes (SIGCONT).
func (s *stack) stallAPIServer(d time.Duration) error {
	pid, ok := apiServerPID(s.env.ControlPlane.GetAPIServer().CertDir)
	if !ok {
		return errors.New("no kube-apiserver process found")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return err
	}
	time.Sleep(d) // the fault itself
	return syscall.Kill(pid, syscall.SIGCONT)
}

// apiServerPID finds the kube-apiserver this stack started by its certificate directory, which
// is this run's own.
func apiServerPID(certDir string) (int, bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), "kube-apiserver") && strings.Contains(string(cmdline), certDir) {
			return pid, true
		}
	}
	return 0, false
}

func (s *stack) stop() {
	_ = s.stopManager()
	if s.stopRunner != nil {
		s.stopRunner()
		for range s.runners {
			select {
			case <-s.runnerDone:
			case <-time.After(45 * time.Second):
			}
		}
	}
	if s.stopWatch != nil {
		s.stopWatch()
	}
	s.proxiesMu.Lock()
	for _, p := range s.proxies {
		p.Close()
	}
	s.proxiesMu.Unlock()
	if s.env != nil {
		_ = s.env.Stop()
	}
	if s.fw != nil {
		_ = s.fw.Close()
	}
}
