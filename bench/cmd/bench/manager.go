package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/waoperator/whatsapp-operator/internal/session/ctxtime"
)

// benchManagerMemory runs cmd/manager as its own process against a fresh embedded API server,
// so that its RSS is its own and not the bench's, and reads it once every resource has been
// reconciled (session Pod created, phase set) and the manager has been idle for a while.
func benchManagerMemory(ctx context.Context, o options, bins *binaries, res *results) error {
	res.noteLoad("manager")
	n := o.Sizes.ManagerObjects
	cp, err := startControlPlane(o)
	if err != nil {
		return err
	}
	defer cp.stop()
	const ns = "bench-manager"
	if err := cp.namespace(ctx, ns); err != nil {
		return err
	}
	user, err := cp.env.AddUser(envtest.User{Name: "bench-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(bins.dir, "manager.kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return err
	}
	logPath := filepath.Join(bins.dir, "manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer func() { _ = logFile.Close() }()

	args := []string{"--health-probe-bind-address=0", "--metrics-bind-address=0", "--session-image=" + benchImage}
	heapProfile := os.Getenv("BENCH_MANAGER_HEAPPROFILE")
	pprofAddr := ""
	if heapProfile != "" {
		if pprofAddr, err = freeLoopbackAddr(); err != nil {
			return err
		}
		args = append(args, "--pprof-bind-address="+pprofAddr)
	}
	cmd := exec.CommandContext(ctx, bins.manager, args...)
	// $BENCH_MANAGER_ENV ("K=V K2=V2") reaches the manager only: GOGC, GOMEMLIMIT, GODEBUG for an
	// A/B of its runtime settings without a rebuild.
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+kubeconfig), strings.Fields(os.Getenv("BENCH_MANAGER_ENV"))...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The manager must not outlive the bench, even if the bench is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				_ = err // stopped on purpose; how it exited says nothing about the figure
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				err := <-exited
				_ = err
			}
		}
	}()
	idleKiB, _, err := rssKiB(cmd.Process.Pid)
	_ = err // it may not have mapped much yet; the figure is read later
	_ = ctxtime.Sleep(ctx, 3*time.Second)
	if startKiB, _, err := rssKiB(cmd.Process.Pid); err == nil {
		idleKiB = startKiB
	}

	statPath := fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)
	cpuBefore, _, _ := procCPU(statPath)
	start := time.Now()
	if err := createAll(ctx, cp.c, ns, names(n), nil, nil); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		err := waitReconciled(ctx, cp.cfg, ns, n, 15*time.Minute)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return err
		}
	case err := <-exited:
		return fmt.Errorf("manager exited: %v (log: %s)", err, logPath)
	}
	took := time.Since(start)
	// Let the requeues and the garbage collector settle: the figure is the steady state with
	// that many resources, not the peak of creating them (reported beside it).
	if err := ctxtime.Sleep(ctx, 20*time.Second); err != nil {
		return err
	}
	st, err := procStatus(cmd.Process.Pid)
	if err != nil {
		return errors.Join(err, fmt.Errorf("log: %s", logPath))
	}
	rss, hwm := st["VmRSS"], st["VmHWM"]
	// The manager's CPU from the first create to the reading: what a leaner heap (a lower GOGC,
	// say) costs it.
	cpuAfter, _, _ := procCPU(statPath)
	cpu := cpuAfter - cpuBefore
	// After the reading: fetching a profile allocates in the manager.
	if heapProfile != "" {
		saveManagerHeap(ctx, pprofAddr, heapProfile)
	}
	res.add(figure{
		Name: "manager memory", Value: mib(rss), Unit: "MiB RSS", Target: "≤ 100 MiB", Pass: mib(rss) <= 100,
		Detail: fmt.Sprintf("cmd/manager process, %d resources reconciled in %.1f s: RSS %.1f MiB, anonymous %.1f, file-backed %.1f (peak %.1f MiB, %.1f MiB before any resource); manager CPU %.1f s",
			n, took.Seconds(), mib(rss), mib(st["RssAnon"]), mib(st["RssFile"]), mib(hwm), mib(idleKiB), cpu.Seconds()),
		Extra: map[string]any{"rssKiB": rss, "anonKiB": st["RssAnon"], "fileKiB": st["RssFile"], "peakKiB": hwm, "emptyKiB": idleKiB,
			"resources": n, "reconcileSeconds": seconds(took), "cpuSeconds": seconds(cpu)},
	})
	return nil
}

// freeLoopbackAddr is a loopback address with a port nothing listens on right now.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String(), nil
}

// saveManagerHeap writes the manager's heap profile (in use as of its last GC; `go tool pprof
// -sample_index=inuse_space`) to file, and the same as text with the runtime's MemStats to
// file.txt: where the figure's heap goes ($BENCH_MANAGER_HEAPPROFILE).
func saveManagerHeap(ctx context.Context, addr, file string) {
	for path, out := range map[string]string{"/debug/pprof/heap": file, "/debug/pprof/heap?debug=1": file + ".txt"} {
		if err := saveHTTP(ctx, "http://"+addr+path, out); err != nil {
			fmt.Fprintln(os.Stderr, "manager heap profile:", err)
		}
	}
}

func saveHTTP(ctx context.Context, url, file string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	_, err = io.Copy(f, resp.Body)
	return err
}
