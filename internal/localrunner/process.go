package localrunner

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// process is one container's process. It runs in its own process group so that stopping it
// also stops whatever it started, as a kubelet stops a container's whole cgroup.
type process struct {
	cmd      *exec.Cmd
	logFile  *os.File
	started  time.Time
	done     chan struct{}
	finished time.Time
	exitCode int32
	signal   string // the signal that ended it, if any
	waitErr  error

	stopOnce sync.Once
}

type processSpec struct {
	path    string
	args    []string
	env     []string
	dir     string
	logPath string
	log     logr.Logger
}

func startProcess(spec processSpec) (*process, error) {
	logFile, err := os.OpenFile(spec.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(spec.path, spec.args...)
	cmd.Env = spec.env
	cmd.Dir = spec.dir
	cmd.Stdout = io.MultiWriter(logFile, &lineLogger{log: spec.log.WithValues("stream", "stdout")})
	cmd.Stderr = io.MultiWriter(logFile, &lineLogger{log: spec.log.WithValues("stream", "stderr")})
	cmd.SysProcAttr = sysProcAttr()
	// A grandchild that keeps stdout open must not keep Wait from returning.
	cmd.WaitDelay = 2 * time.Second
	if err := spawn(cmd); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	p := &process{cmd: cmd, logFile: logFile, started: time.Now(), done: make(chan struct{})}
	go p.wait()
	return p, nil
}

func (p *process) wait() {
	err := p.cmd.Wait()
	p.finished = time.Now()
	// The leader is gone; whatever it left in its group goes too.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.waitErr = err
	if st := p.cmd.ProcessState; st != nil {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			// The shell and kubelet convention, so that 137 reads as "killed".
			p.exitCode = 128 + int32(ws.Signal())
			p.signal = ws.Signal().String()
		} else {
			p.exitCode = int32(st.ExitCode())
		}
	} else {
		p.exitCode = 128
	}
	_ = p.logFile.Close()
	close(p.done)
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the group, waits up to grace, then sends SIGKILL, and returns once the
// process has been reaped.
func (p *process) stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		pid := p.cmd.Process.Pid
		if !p.exited() {
			_ = syscall.Kill(-pid, syscall.SIGTERM)
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
	<-p.done
}

func (p *process) message() string {
	switch {
	case p.signal != "":
		return "killed by signal: " + p.signal
	case p.waitErr != nil && !isExitError(p.waitErr):
		return p.waitErr.Error()
	}
	return ""
}

func isExitError(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

// lineLogger logs whole lines; a process's output arrives in arbitrary chunks.
type lineLogger struct {
	log logr.Logger
	buf []byte
	mu  sync.Mutex
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.log.V(1).Info(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	// A process that never ends its line must not grow the buffer without bound.
	if len(l.buf) > 64<<10 {
		l.log.V(1).Info(string(l.buf))
		l.buf = l.buf[:0]
	}
	return len(b), nil
}
