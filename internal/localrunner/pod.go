package localrunner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// configRetry is how soon a pod waiting for a missing Secret or ConfigMap is tried again.
const configRetry = 3 * time.Second

// podRun is one pod incarnation (one UID) on this Node.
type podRun struct {
	r   *Runner
	key string
	uid types.UID
	pod *corev1.Pod // as it was when started: the spec does not change
	log logr.Logger

	mu         sync.Mutex
	startTime  metav1.Time
	containers []*containerRun
	// failure is why the pod could not start; it makes the pod Failed.
	failure string
	lost    bool // started by an earlier runner
	reaping bool // guarded by r.mu

	ports     portMap
	dirs      map[string]string // volume folders by volume name
	allExited chan struct{}

	terminateOnce sync.Once
	statusMu      sync.Mutex // one status write at a time, each from the latest state
	// last is the pod's status as the API server last returned it (at first, as the watch
	// showed it): the base of the next status patch. Guarded by statusMu.
	last corev1.PodStatus
}

type containerRun struct {
	spec     corev1.Container
	proc     *process
	startErr string
	ready    bool
}

func (r *Runner) newRun(key string, pod *corev1.Pod) *podRun {
	return &podRun{
		r: r, key: key, uid: pod.UID, pod: pod.DeepCopy(), last: *pod.Status.DeepCopy(),
		log:       r.log.WithValues("pod", key, "uid", pod.UID),
		startTime: metav1.Now(),
		allExited: make(chan struct{}),
	}
}

// startPod prepares and starts every container of the pod. A pod that cannot start becomes
// Failed, except one waiting for a Secret or ConfigMap, which stays Pending and is retried.
func (r *Runner) startPod(ctx context.Context, key string, pod *corev1.Pod) error {
	run := r.newRun(key, pod)
	specs, err := run.prepare(ctx)
	if err != nil {
		if ce, ok := err.(*configError); ok && ce.retry {
			r.releasePorts(run.ports)
			run.log.Info("pod waits for its configuration", "reason", ce.msg)
			r.queue.AddAfter(key, configRetry)
			return run.writePendingStatus(ctx, ce.msg)
		}
		run.failure = err.Error()
		run.exitedAll()
		r.register(run)
		run.log.Info("pod cannot start", "reason", run.failure)
		return run.writeStatus(ctx)
	}

	for i, spec := range specs {
		c := &containerRun{spec: pod.Spec.Containers[i]}
		run.containers = append(run.containers, c)
		if spec.path == "" {
			c.startErr = spec.failure
			continue
		}
		p, err := startProcess(spec.processSpec)
		if err != nil {
			c.startErr = fmt.Sprintf("starting %s: %v", spec.path, err)
			continue
		}
		c.proc = p
		run.log.Info("container started", "container", c.spec.Name, "pid", p.cmd.Process.Pid, "command", spec.path, "args", spec.args)
	}
	for _, c := range run.containers {
		if c.startErr != "" {
			// One container that cannot start fails the pod; the others must not run alone.
			run.failure = fmt.Sprintf("container %s: %s", c.spec.Name, c.startErr)
			run.log.Info("pod cannot start", "reason", run.failure)
			break
		}
	}
	if run.failure != "" {
		for _, c := range run.containers {
			if c.proc != nil {
				c.proc.stop(0)
			}
		}
	}
	r.register(run)
	r.wg.Go(func() { run.supervise(ctx) })
	return run.writeStatus(ctx)
}

func (r *Runner) register(run *podRun) {
	r.mu.Lock()
	r.runs[run.uid] = run
	r.mu.Unlock()
}

type containerSpec struct {
	processSpec
	failure string // set instead of path when the container has no local executable
}

// prepare makes the pod's folders, ports, kubeconfig and the process of every container.
func (run *podRun) prepare(ctx context.Context) ([]containerSpec, error) {
	r, pod := run.r, run.pod
	if len(pod.Spec.InitContainers) > 0 {
		return nil, fmt.Errorf("init containers are not supported by the local runner")
	}
	for _, dir := range []string{r.podDir(pod), r.tmpDir(pod)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	dirs, err := r.volumeDirs(pod)
	if err != nil {
		return nil, err
	}
	if err := r.projectSecrets(ctx, pod, dirs); err != nil {
		return nil, err
	}
	run.dirs = dirs
	if run.ports, err = r.allocatePorts(pod); err != nil {
		return nil, err
	}
	kubeconfig, err := r.writeKubeconfig(pod)
	if err != nil {
		return nil, fmt.Errorf("writing the pod's kubeconfig: %w", err)
	}
	env := newEnvResolver(r, pod)
	var specs []containerSpec
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		spec := containerSpec{processSpec: processSpec{
			logPath: filepath.Join(r.podDir(pod), c.Name+".log"),
			log:     run.log.WithValues("container", c.Name),
		}}
		mounts, err := mountsFor(c, dirs)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", c.Name, err)
		}
		containerEnv, err := env.containerEnv(ctx, c)
		if err != nil {
			return nil, err
		}
		spec.env = run.processEnv(containerEnv, mounts, kubeconfig)
		spec.dir = r.tmpDir(pod)
		if c.WorkingDir != "" {
			if wd := rewritePath(mounts, c.WorkingDir); wd != c.WorkingDir {
				spec.dir = wd
			}
		}
		name, rest := c.Image, []string(nil)
		if len(c.Command) > 0 {
			name, rest = c.Command[0], c.Command[1:]
		}
		path, ok := r.opts.Commands[name]
		if !ok {
			spec.failure = fmt.Sprintf("command %q is not in the local runner's Commands", name)
			specs = append(specs, spec)
			continue
		}
		spec.path = path
		for _, a := range append(append([]string(nil), rest...), c.Args...) {
			spec.args = append(spec.args, rewritePath(mounts, run.ports.rewriteArg(a)))
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// processEnv: a small base (no inherited runner environment, as in a container), the pod's
// env with its paths mapped, the runner's own settings, then ExtraEnv, which wins.
func (run *podRun) processEnv(containerEnv []string, mounts []mount, kubeconfig string) []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, kv := range containerEnv {
		k, v, _ := cutEnv(kv)
		env = append(env, k+"="+rewritePath(mounts, v))
	}
	tmp := run.r.tmpDir(run.pod)
	env = append(env, "HOME="+tmp, "TMPDIR="+tmp, "KUBECONFIG="+kubeconfig)
	return append(env, run.r.opts.ExtraEnv...)
}

func cutEnv(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

// supervise probes the containers while they run and reports each exit.
func (run *podRun) supervise(ctx context.Context) {
	var wg sync.WaitGroup
	probeCtx, stopProbes := context.WithCancel(ctx)
	wg.Go(func() { run.refreshSecrets(probeCtx, run.dirs, probeCtx.Done()) })
	for _, c := range run.containers {
		if c.proc == nil {
			continue
		}
		wg.Go(func() { run.probe(probeCtx, c) })
		wg.Go(func() {
			<-c.proc.done
			run.mu.Lock()
			c.ready = false
			run.mu.Unlock()
			run.log.Info("container exited", "container", c.spec.Name, "exitCode", c.proc.exitCode)
			run.writeStatusLogged(ctx)
		})
	}
	for _, c := range run.containers {
		if c.proc != nil {
			<-c.proc.done
		}
	}
	stopProbes()
	wg.Wait()
	run.exitedAll()
	run.writeFinalStatus(ctx)
}

// writeFinalStatus reports the end of the run and, unlike the other writes, keeps trying until
// the API server takes it: nothing later would report it, and a pod left Running with no
// process (its exit fell into an API server outage) would stall its controller for good. A
// kubelet resyncs pod status for the same reason.
func (run *podRun) writeFinalStatus(ctx context.Context) {
	delay := 200 * time.Millisecond
	for {
		err := run.writeStatus(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		run.log.Error(err, "cannot report the pod's end; retrying", "after", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// exitedAll marks the end of the run's last process and frees what it held.
func (run *podRun) exitedAll() {
	run.r.releasePorts(run.ports)
	close(run.allExited)
}

func (run *podRun) finished() bool {
	select {
	case <-run.allExited:
		return true
	default:
		return false
	}
}

func (run *podRun) specGrace() time.Duration { return specGrace(run.pod) }

// stopProcesses stops every container at once and returns when all are gone.
func (run *podRun) stopProcesses(grace time.Duration) {
	var wg sync.WaitGroup
	for _, c := range run.containers {
		if c.proc != nil {
			wg.Go(func() { c.proc.stop(grace) })
		}
	}
	wg.Wait()
	<-run.allExited
}

// terminate carries out a graceful deletion as a kubelet does: stop the processes within the
// grace period, report their final status, then remove the object for good.
func (run *podRun) terminate(ctx context.Context, grace time.Duration) {
	run.terminateOnce.Do(func() {
		run.r.wg.Go(func() {
			run.log.Info("pod is being deleted; stopping its processes", "grace", grace)
			run.stopProcesses(grace)
			run.writeStatusLogged(ctx)
			if err := run.r.deletePodObject(ctx, run.pod.Namespace, run.pod.Name, run.uid); err != nil {
				if ctx.Err() == nil {
					run.log.Error(err, "cannot delete the pod object")
					run.r.queue.AddRateLimited(run.key)
				}
			}
		})
	})
	if run.finished() {
		// A retry after a failed delete: the processes are long gone.
		_ = run.r.deletePodObject(ctx, run.pod.Namespace, run.pod.Name, run.uid)
	}
}

// deletePodObject removes a terminated pod from the API, only the incarnation meant.
func (r *Runner) deletePodObject(ctx context.Context, ns, name string, uid types.UID) error {
	err := r.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// markLost fails a pod that claims to run but whose processes no longer exist.
func (r *Runner) markLost(ctx context.Context, pod *corev1.Pod) error {
	run := r.newRun(cacheKey(pod), pod)
	run.lost = true
	run.failure = "the local runner that ran this pod stopped; its processes are gone"
	close(run.allExited)
	r.register(run)
	return run.writeStatus(ctx)
}

func cacheKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }
