package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

	cmd := exec.CommandContext(ctx, bins.manager, "--health-probe-bind-address=0", "--metrics-bind-address=0",
		"--session-image="+benchImage)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
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
	rss, hwm, err := rssKiB(cmd.Process.Pid)
	if err != nil {
		return errors.Join(err, fmt.Errorf("log: %s", logPath))
	}
	res.add(figure{
		Name: "manager memory", Value: mib(rss), Unit: "MiB RSS", Target: "≤ 100 MiB", Pass: mib(rss) <= 100,
		Detail: fmt.Sprintf("cmd/manager process, %d resources reconciled in %.1f s: RSS %.1f MiB (peak %.1f MiB, %.1f MiB before any resource)",
			n, took.Seconds(), mib(rss), mib(hwm), mib(idleKiB)),
		Extra: map[string]any{"rssKiB": rss, "peakKiB": hwm, "emptyKiB": idleKiB, "resources": n, "reconcileSeconds": seconds(took)},
	})
	return nil
}
