package localrunner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/waoperator/whatsapp-operator/internal/uncompressed"
)

// DefaultSelector picks the pods the operator creates.
const DefaultSelector = "app.kubernetes.io/managed-by=whatsapp-operator"

// Options configure a Runner.
type Options struct {
	// NodeName is the Node the runner registers (Ready) and binds pods to; default "local".
	NodeName string
	// WorkDir is the root of every local folder: PVC -> WorkDir/volumes/<ns>/<claim>,
	// emptyDir -> WorkDir/pods/<uid>/<volume>, logs -> WorkDir/pods/<uid>/<container>.log.
	WorkDir string
	// Commands maps a container's command[0] (e.g. "/session"), or its image when it has no
	// command, to a local executable.
	Commands map[string]string
	// ExtraEnv is appended to every process's environment (and so wins over the pod's).
	ExtraEnv []string
	// Selector picks the unscheduled pods to bind; nil means DefaultSelector. Pods already
	// bound to NodeName are run whatever their labels.
	Selector labels.Selector
	// APIServerFor, when set, gives the API server URL written into a pod's kubeconfig; an
	// empty result keeps the runner's own. It lets a test route one pod's API traffic through a
	// proxy it can cut, to partition that pod alone. The pod's TLS settings stay the runner's,
	// so the URL must reach a server with the same certificate (a TCP proxy does).
	APIServerFor func(*corev1.Pod) string
	Logger       logr.Logger
}

// Runner is node, scheduler and kubelet for the pods of one bare API server. It satisfies
// controller-runtime's manager.Runnable.
type Runner struct {
	cfg  *rest.Config
	cs   kubernetes.Interface
	opts Options
	log  logr.Logger

	queue       workqueue.TypedRateLimitingInterface[string]
	nodePods    cache.Indexer
	unscheduled cache.Indexer

	// lost: the node is lost (LoseNode); its kubelet does nothing until ReturnNode.
	lost atomic.Bool

	mu    sync.Mutex
	runs  map[types.UID]*podRun
	ports map[int32]bool // loopback ports handed to live pods
	wg    sync.WaitGroup // every goroutine that owns a process
}

// New checks the options; nothing talks to the API server before Start.
func New(cfg *rest.Config, opts Options) (*Runner, error) {
	if cfg == nil {
		return nil, errors.New("localrunner: no rest.Config")
	}
	if opts.NodeName == "" {
		opts.NodeName = "local"
	}
	if opts.WorkDir == "" {
		return nil, errors.New("localrunner: Options.WorkDir is required")
	}
	// Processes run in other directories; every path handed to them must be absolute.
	wd, err := filepath.Abs(opts.WorkDir)
	if err != nil {
		return nil, err
	}
	opts.WorkDir = wd
	if err := os.MkdirAll(wd, 0o700); err != nil {
		return nil, fmt.Errorf("localrunner: %w", err)
	}
	if opts.Selector == nil {
		opts.Selector, err = labels.Parse(DefaultSelector)
		if err != nil {
			return nil, err
		}
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	// Uncompressed, as the manager asks: client-go's informers list and watch with watch-list
	// streams, which the API server gzips event by event for a client that accepts gzip, at a
	// CPU cost per event that a pod starting in 20 competes with.
	cfg = uncompressed.Config(cfg)
	// Protobuf, as a kubelet talks (its --kube-api-content-type): client-go's clientset speaks
	// JSON unless told, and the API server then encodes every pod event twice, once for the
	// manager's protobuf watch and once more in JSON for this one. Strategic merge patches of
	// pods/status keep their own JSON body.
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("localrunner: %w", err)
	}
	return &Runner{
		cfg:   cfg,
		cs:    cs,
		opts:  opts,
		log:   opts.Logger.WithValues("node", opts.NodeName),
		runs:  map[types.UID]*podRun{},
		ports: map[int32]bool{},
	}, nil
}

// NeedLeaderElection: pods must run whether or not this manager leads.
func (r *Runner) NeedLeaderElection() bool { return false }

// Start registers the Node, then binds and runs pods until ctx ends. Then it stops every
// process (SIGTERM, the pod's grace period, SIGKILL) and returns once all are gone.
func (r *Runner) Start(ctx context.Context) error {
	if err := r.ensureNode(ctx); err != nil {
		return fmt.Errorf("localrunner: registering Node %s: %w", r.opts.NodeName, err)
	}
	r.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "localrunner-" + r.opts.NodeName},
	)

	// Two watches, each as narrow as the API allows: the pods on this Node (a kubelet's
	// watch) and the unscheduled pods of the selector (a scheduler's).
	onNode := informers.NewSharedInformerFactoryWithOptions(r.cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", r.opts.NodeName).String()
	}))
	pending := informers.NewSharedInformerFactoryWithOptions(r.cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", "").String()
		o.LabelSelector = r.opts.Selector.String()
	}))
	nodeInf := onNode.Core().V1().Pods().Informer()
	pendingInf := pending.Core().V1().Pods().Informer()
	for _, inf := range []cache.SharedIndexInformer{nodeInf, pendingInf} {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    r.enqueue,
			UpdateFunc: func(_, obj any) { r.enqueue(obj) },
			DeleteFunc: r.enqueue,
		}); err != nil {
			return err
		}
	}
	r.nodePods, r.unscheduled = nodeInf.GetIndexer(), pendingInf.GetIndexer()

	informerCtx, stopInformers := context.WithCancel(ctx)
	defer stopInformers()
	onNode.Start(informerCtx.Done())
	pending.Start(informerCtx.Done())
	defer onNode.Shutdown()
	defer pending.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nodeInf.HasSynced, pendingInf.HasSynced) {
		r.shutdown()
		return ctx.Err()
	}
	r.log.Info("local pod runner started", "workDir", r.opts.WorkDir, "selector", r.opts.Selector.String())

	var workers sync.WaitGroup
	for range 4 {
		workers.Go(func() {
			for r.processNext(ctx) {
			}
		})
	}
	workers.Go(func() { r.heartbeat(ctx) })

	<-ctx.Done()
	r.queue.ShutDown()
	workers.Wait()
	r.shutdown()
	r.log.Info("local pod runner stopped")
	return nil
}

// shutdown stops every process the runner started and waits for them. A lost node's frozen
// processes are killed: they could not act on SIGTERM.
func (r *Runner) shutdown() {
	if r.lost.Load() {
		r.signalAll(func(*podRun) syscall.Signal { return syscall.SIGKILL })
	}
	r.mu.Lock()
	runs := make([]*podRun, 0, len(r.runs))
	for _, run := range r.runs {
		runs = append(runs, run)
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Go(func() { run.stopProcesses(run.specGrace()) })
	}
	wg.Wait()
	r.wg.Wait()
}

func (r *Runner) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	r.queue.Add(key)
}

func (r *Runner) processNext(ctx context.Context) bool {
	key, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(key)
	if r.lost.Load() {
		return true // ReturnNode syncs every pod again
	}
	if err := r.sync(ctx, key); err != nil {
		if ctx.Err() == nil {
			r.log.Error(err, "syncing pod", "pod", key)
		}
		r.queue.AddRateLimited(key)
		return true
	}
	r.queue.Forget(key)
	return true
}

// lookup finds the pod by key, on this Node first: a pod just bound may still linger in the
// unscheduled cache.
func (r *Runner) lookup(key string) *corev1.Pod {
	for _, idx := range []cache.Indexer{r.nodePods, r.unscheduled} {
		if obj, ok, err := idx.GetByKey(key); err == nil && ok {
			if pod, ok := obj.(*corev1.Pod); ok {
				return pod
			}
		}
	}
	return nil
}

// sync brings one pod key to where it should be: bound, running, stopped, deleted.
func (r *Runner) sync(ctx context.Context, key string) error {
	pod := r.lookup(key)
	r.reapOthers(key, pod)
	if pod == nil {
		return nil
	}
	if pod.Spec.NodeName == "" {
		if r.wantsBinding(pod) {
			return r.bind(ctx, pod)
		}
		return nil
	}
	if pod.Spec.NodeName != r.opts.NodeName {
		return nil
	}
	r.mu.Lock()
	run := r.runs[pod.UID]
	r.mu.Unlock()

	if pod.DeletionTimestamp != nil {
		if run == nil {
			return r.deletePodObject(ctx, pod.Namespace, pod.Name, pod.UID)
		}
		run.terminate(ctx, deletionGrace(pod))
		return nil
	}
	if run != nil {
		return nil
	}
	switch {
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return nil
	case wasRunning(pod):
		// Started by an earlier runner whose processes died with it; restartPolicy is Never.
		return r.markLost(ctx, pod)
	}
	return r.startPod(ctx, key, pod)
}

// reapOthers stops and forgets the runs under key that are not the current pod: the pod was
// deleted from the API (or replaced under the same name) while its process lived.
func (r *Runner) reapOthers(key string, current *corev1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for uid, run := range r.runs {
		if run.key != key || (current != nil && current.UID == uid) {
			continue
		}
		if run.finished() {
			delete(r.runs, uid)
			continue
		}
		if run.reaping {
			continue
		}
		run.reaping = true
		r.wg.Go(func() {
			run.log.Info("pod is gone from the API; stopping its processes")
			run.stopProcesses(run.specGrace())
			r.queue.Add(key) // to forget it
		})
	}
}

func deletionGrace(pod *corev1.Pod) time.Duration {
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return specGrace(pod)
}

func specGrace(pod *corev1.Pod) time.Duration {
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}

func wasRunning(pod *corev1.Pod) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running != nil || cs.State.Terminated != nil {
			return true
		}
	}
	return false
}
