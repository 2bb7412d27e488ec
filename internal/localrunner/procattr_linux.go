package localrunner

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr {
	// Pdeathsig: should the runner die without stopping its processes, the kernel does it.
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// Pdeathsig fires when the thread that forked the child ends, not the process, and the Go
// runtime may end threads. Every child is therefore forked from one thread that never ends.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for req := range spawnReqs {
				req.err <- req.cmd.Start()
			}
		}()
	})
	req := spawnReq{cmd: cmd, err: make(chan error, 1)}
	spawnReqs <- req
	return <-req.err
}
