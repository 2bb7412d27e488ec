package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
	"github.com/waoperator/whatsapp-operator/controllers"
	"github.com/waoperator/whatsapp-operator/internal/localrunner"
)

// The client settings of every client the bench drives, the in-process manager's and the floor
// loop's alike. envtest's admin config already has these; they are set explicitly so that the
// floor and the controller are throttled (not at all, in practice) the same way whatever
// envtest's defaults become. cmd/manager (ctrl.GetConfig) disables client-side rate limiting.
const (
	clientQPS   = 1000
	clientBurst = 2000
)

// benchImage is never pulled: the runner maps the pod's /session command to the local build.
const benchImage = "local/whatsapp-operator:bench"

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(whatsappv1alpha1.AddToScheme(s))
	return s
}()

type binaries struct {
	dir, session, manager string
}

// cleanup removes the binaries and the runner's work folders (pod logs, stores), unless
// $BENCH_KEEP=1, which keeps them to read the sessions' logs after a run.
func (b *binaries) cleanup() {
	if os.Getenv("BENCH_KEEP") == "1" {
		fmt.Fprintln(os.Stderr, "bench: kept", b.dir)
		return
	}
	_ = os.RemoveAll(b.dir)
}

// buildBinaries builds the session with the fakewa tag (the only build that can reach the fake
// server) and cmd/manager for the manager-memory figure, which needs its own process.
func buildBinaries(ctx context.Context, moduleRoot string) (*binaries, error) {
	dir, err := os.MkdirTemp("", "waoperator-bench-")
	if err != nil {
		return nil, err
	}
	b := &binaries{dir: dir, session: filepath.Join(dir, "bin", "session"), manager: filepath.Join(dir, "bin", "manager")}
	for _, args := range [][]string{
		{"build", "-tags", "fakewa", "-o", b.session + ".linked", "./cmd/session"},
		{"build", "-o", b.manager + ".linked", "./cmd/manager"},
	} {
		fmt.Fprintln(os.Stderr, "go", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = moduleRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			b.cleanup()
			return nil, fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
		}
	}
	// Both run from a copy written as a container runtime writes an image's files: the memory
	// figures count the binary's resident pages, which depend on how it was written (install.go).
	for _, bin := range []string{b.session, b.manager} {
		if err := installLikeAnImage(bin+".linked", bin); err != nil {
			b.cleanup()
			return nil, err
		}
	}
	return b, nil
}

// controlPlane is one embedded kube-apiserver and etcd with the CRDs. Each figure gets a fresh
// one, so that no figure pays for the objects another left behind.
type controlPlane struct {
	env *envtest.Environment
	cfg *rest.Config
	c   client.Client
}

func startControlPlane(o options) (*controlPlane, error) {
	env := &envtest.Environment{
		BinaryAssetsDirectory: o.Assets,
		CRDDirectoryPaths:     []string{filepath.Join(o.ModuleRoot, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		UseExistingCluster:    ptr.To(false),
	}
	// As in cmd/localdev: without kube-controller-manager the pvc-protection finalizer is never
	// removed.
	env.ControlPlane.GetAPIServer().Configure().Append("disable-admission-plugins", "StorageObjectInUseProtection")
	// Each resource has a ClusterIP Service (its send API): envtest's default /24 service range
	// runs out at ~250 resources, and the throughput and manager figures create 500 and 1,000.
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.0.0.0/16")
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("embedded control plane (%s): %w", o.Assets, err)
	}
	cfg.QPS, cfg.Burst = clientQPS, clientBurst
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(err, env.Stop())
	}
	return &controlPlane{env: env, cfg: cfg, c: c}, nil
}

func (cp *controlPlane) stop() {
	if err := cp.env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
}

func (cp *controlPlane) namespace(ctx context.Context, name string) error {
	return cp.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

// background runs a manager or runner until stop is called, which waits for it to end.
type background struct {
	cancel context.CancelFunc
	done   chan error
}

func (b *background) stop() error {
	b.cancel()
	return <-b.done
}

func goRun(ctx context.Context, start func(context.Context) error) *background {
	ctx, cancel := context.WithCancel(ctx)
	b := &background{cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := start(ctx)
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		b.done <- err
	}()
	return b
}

// startManager runs the controller in-process as cmd/localdev does, with cmd/manager's flag
// defaults unless session timings are given. namespaces, when set, limits its cache.
func startManager(ctx context.Context, cfg *rest.Config, session *controllers.SessionConfig, namespaces ...string) (*background, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = clientQPS, clientBurst
	ro := controllers.DefaultOptions()
	if session != nil {
		ro.Session = *session
	}
	ro.Session.Image = benchImage
	mgr, err := controllers.NewManager(ctx, cfg, controllers.ManagerOptions{
		Reconciler: ro,
		Namespaces: namespaces,
		// Several managers run one after the other in this process.
		Tune: func(o *ctrl.Options) { o.Controller = config.Controller{SkipNameValidation: ptr.To(true)} },
	})
	if err != nil {
		return nil, err
	}
	b := goRun(ctx, mgr.Start)
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		return nil, errors.Join(errors.New("manager cache did not sync"), b.stop())
	}
	return b, nil
}

// countingProxy sits between clients and the API server and counts their requests per
// impersonated user: the runner's per-pod kubeconfigs impersonate the pod's ServiceAccount, so
// the user names which session made a request.
type countingProxy struct {
	srv *http.Server
	url string

	mu     sync.Mutex
	writes map[string]map[string]int // user -> "VERB resource" -> count (reads too)
}

func startCountingProxy(target *rest.Config) (*countingProxy, error) {
	u, err := url.Parse(target.Host)
	if err != nil {
		return nil, err
	}
	// The proxy passes on the client's Accept-Encoding and adds none of its own: a client that
	// turned compression off (the manager does) must not have its watches gzipped by the API
	// server on the proxy's behalf.
	target = rest.CopyConfig(target)
	target.DisableCompression = true
	tr, err := rest.TransportFor(target)
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = tr
	rp.FlushInterval = -1 // watches stream
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		// A watch the client closed ends this way; that is no error of the proxy.
		if !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "counting proxy:", r.Method, r.URL.Path, err)
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	p := &countingProxy{writes: map[string]map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.url = "http://" + ln.Addr().String()
	p.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.count(r)
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *countingProxy) count(r *http.Request) {
	user := r.Header.Get("Impersonate-User")
	if user == "" {
		user = "(not impersonated)"
	}
	what := classify(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.writes[user] == nil {
		p.writes[user] = map[string]int{}
	}
	p.writes[user][what]++
}

// classify names a request "VERB resource[/subresource]", with GET split into GET (one
// object), LIST and WATCH, as the API server's own request metrics do.
func classify(r *http.Request) string {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var tail []string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		tail = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		tail = parts[3:]
	default:
		return r.Method + " " + r.URL.Path
	}
	if len(tail) >= 3 && tail[0] == "namespaces" {
		tail = tail[2:]
	}
	res := "?"
	if len(tail) > 0 {
		res = tail[0]
	}
	if len(tail) > 2 {
		res += "/" + tail[2]
	}
	verb := r.Method
	if verb == http.MethodGet {
		switch {
		case r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1":
			verb = "WATCH"
		case len(tail) <= 1:
			verb = "LIST"
		}
	}
	return verb + " " + res
}

func isWrite(what string) bool {
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if strings.HasPrefix(what, m+" ") {
			return true
		}
	}
	return false
}

// totals sums a snapshot over users: writes, reads, and the count of each kind.
func totals(snap map[string]map[string]int) (writes, reads int, byKind map[string]int) {
	byKind = map[string]int{}
	for _, m := range snap {
		for k, v := range m {
			byKind[k] += v
			if isWrite(k) {
				writes += v
			} else if !strings.HasPrefix(k, "WATCH ") {
				reads += v
			}
		}
	}
	return writes, reads, byKind
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes = map[string]map[string]int{}
}

func (p *countingProxy) snapshot() map[string]map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]map[string]int{}
	for u, m := range p.writes {
		out[u] = map[string]int{}
		for k, v := range m {
			out[u][k] = v
		}
	}
	return out
}

func (p *countingProxy) close() { _ = p.srv.Close() }

// startRunner runs session pods as local processes; its API traffic, and that of every session
// it starts (their kubeconfigs are built from this config), goes through the proxy.
func startRunner(ctx context.Context, proxyURL, workDir, sessionBin string, extraEnv []string) (*background, error) {
	r, err := localrunner.New(&rest.Config{Host: proxyURL, QPS: clientQPS, Burst: clientBurst}, localrunner.Options{
		NodeName: "local",
		WorkDir:  workDir,
		Commands: map[string]string{"/session": sessionBin},
		ExtraEnv: extraEnv,
		Logger:   ctrl.Log.WithName("runner"),
	})
	if err != nil {
		return nil, err
	}
	return goRun(ctx, r.Start), nil
}

// newConnection is the smallest resource: QR pairing, SQLite store with the defaults.
func newConnection(ns, name string) *whatsappv1alpha1.WhatsAppConnection {
	return &whatsappv1alpha1.WhatsAppConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       whatsappv1alpha1.WhatsAppConnectionSpec{DeviceName: "bench"},
	}
}

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("wac-%04d", i)
	}
	return out
}

// parallel runs fn for each index with w workers and returns the first error.
func parallel(n, w int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range w {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// createAll applies the resources "at once", as a kubectl apply of one file would arrive but
// with 8 clients in flight, so that the create side is not what is measured.
func createAll(ctx context.Context, c client.Client, ns string, nameList []string, created map[string]time.Time, mu *sync.Mutex) error {
	return parallel(len(nameList), 8, func(i int) error {
		start := time.Now()
		if err := c.Create(ctx, newConnection(ns, nameList[i])); err != nil {
			return err
		}
		if created != nil {
			mu.Lock()
			created[nameList[i]] = start
			mu.Unlock()
		}
		return nil
	})
}

// waitReconciled waits until every resource in ns has its session Pod and a phase in status.
// It watches (pods as metadata only) instead of listing: listing 500 WhatsAppConnections and
// 500 pods every 250 ms cost the API server about 10 ms of CPU per resource, which the figure
// then charged to the controller.
func waitReconciled(ctx context.Context, cfg *rest.Config, ns string, n int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	// No resourceVersion: each watch starts with an ADDED event per existing object.
	wacs, err := c.Watch(ctx, &whatsappv1alpha1.WhatsAppConnectionList{}, client.InNamespace(ns))
	if err != nil {
		return err
	}
	defer wacs.Stop()
	podList := &metav1.PartialObjectMetadataList{}
	podList.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	pods, err := c.Watch(ctx, podList, client.InNamespace(ns))
	if err != nil {
		return err
	}
	defer pods.Stop()

	phased, havePod := map[string]bool{}, map[string]bool{}
	done := func() int {
		k := 0
		for name := range phased {
			if havePod[name+"-session"] {
				k++
			}
		}
		return k
	}
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d resources in %s reconciled after %s", done(), n, ns, timeout)
		case ev, ok := <-wacs.ResultChan():
			if !ok {
				return fmt.Errorf("watch of %s ended", ns)
			}
			if w, isWAC := ev.Object.(*whatsappv1alpha1.WhatsAppConnection); isWAC && ev.Type != watch.Deleted && w.Status.Phase != "" {
				phased[w.Name] = true
			}
		case ev, ok := <-pods.ResultChan():
			if !ok {
				return fmt.Errorf("watch of pods in %s ended", ns)
			}
			if p, isMeta := ev.Object.(*metav1.PartialObjectMetadata); isMeta {
				havePod[p.Name] = ev.Type != watch.Deleted
			}
		}
		if done() >= n {
			return nil
		}
	}
}

// sessionPID finds the process the runner started for a pod: its KUBECONFIG is in the pod's
// folder, which is named by the pod's UID.
func sessionPID(sessionBin, podUID string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	marker := "/pods/" + podUID + "/"
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || exe != sessionBin {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if strings.Contains(string(env), marker) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no session process for pod %s", podUID)
}

// rssKiB reads VmRSS (and VmHWM, the peak) from /proc/<pid>/status.
func rssKiB(pid int) (rss, hwm int64, err error) {
	m, err := procStatus(pid)
	if err != nil {
		return 0, 0, err
	}
	return m["VmRSS"], m["VmHWM"], nil
}

// procStatus returns the kB fields of /proc/<pid>/status (VmRSS, VmHWM, RssAnon, RssFile …)
// and of /proc/<pid>/smaps_rollup (Pss, Pss_Anon, Pss_File …), which tells how much of the RSS
// is the binary's pages that every session on the machine shares.
func procStatus(pid int) (map[string]int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	if rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		data = append(append(data, '\n'), rollup...)
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 3 && fields[2] == "kB" {
			v, _ := strconv.ParseInt(fields[1], 10, 64)
			m[strings.TrimSuffix(fields[0], ":")] = v
		}
	}
	if m["VmRSS"] == 0 {
		return nil, fmt.Errorf("no VmRSS for pid %d", pid)
	}
	return m, nil
}

func mib(kib int64) float64 { return float64(kib) / 1024 }
