// Package e2e drives the operator the way a user does: `make run FAKE_WHATSAPP=1` (the localdev
// stack as a subprocess, with its own state directory and ports), the real kubectl, and the
// fake phone through the fake WhatsApp's control API.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// stack is the running localdev subprocess and what a user would read from its output.
type stack struct {
	moduleRoot string
	tmp        string // everything this suite writes: binaries, state, logs
	stateDir   string // localdev -dir
	logPath    string // localdev's stdout and stderr
	kubectl    string
	kubeconfig string
	controlURL string // the fake WhatsApp control API
	cmd        *exec.Cmd
	exited     chan struct{}
	exitErr    error
	failed     bool // a spec failed: keep tmp for a person to look at
}

var st stack

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end suite")
}

var _ = BeforeSuite(func() {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	st.moduleRoot = root
	st.tmp, err = os.MkdirTemp("", "waoperator-e2e-")
	Expect(err).NotTo(HaveOccurred())
	st.stateDir = filepath.Join(st.tmp, "state")
	st.logPath = filepath.Join(st.tmp, "localdev.log")
	st.kubectl = findKubectl(root)

	assets := os.Getenv("KUBEBUILDER_ASSETS")
	Expect(assets).NotTo(BeEmpty(), "KUBEBUILDER_ASSETS is not set: `make test-e2e` sets it (`make envtest` prints the directory)")
	assets, err = filepath.Abs(assets)
	Expect(err).NotTo(HaveOccurred())

	// The same build as hack/run.sh's .local/bin/localdev, but in this suite's own directory so
	// that a concurrent `make run` or a second suite keeps its binary.
	// Both binaries are built before any clock starts: the readiness wait below is about the
	// stack, and a cold build on a busy machine could eat it.
	localdev := filepath.Join(st.tmp, "bin", "localdev")
	session := filepath.Join(st.tmp, "bin", "session")
	for _, b := range [][]string{
		{"build", "-o", localdev, "./cmd/localdev"},
		{"build", "-tags", "fakewa", "-o", session, "./cmd/session"},
	} {
		build := exec.Command("go", b...)
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "go %s:\n%s", strings.Join(b, " "), out)
	}

	logFile, err := os.Create(st.logPath)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = logFile.Close() }() // the child has its own descriptor
	// Port 0 for the control API: two suites (or a `make run`) must not fight over 8089; the
	// instructions localdev prints name the port it got.
	st.cmd = exec.Command(localdev, "-dir", st.stateDir, "-module-root", root, "-assets", assets,
		"-fake-whatsapp", "-fake-control", "127.0.0.1:0", "-session-binary", session)
	st.cmd.Dir = root
	st.cmd.Stdout, st.cmd.Stderr = logFile, logFile
	// If this test process dies without AfterSuite (a go test timeout), localdev still stops
	// everything it started.
	st.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	Expect(st.cmd.Start()).To(Succeed())
	st.exited = make(chan struct{})
	go func() { st.exitErr = st.cmd.Wait(); close(st.exited) }()

	kubeconfigLine := regexp.MustCompile(`export KUBECONFIG=(\S+)`)
	controlLine := regexp.MustCompile(`curl -s (http://\S+)/devices`)
	// Nothing is built any more: the control plane is up in seconds.
	Eventually(func(g Gomega) {
		select {
		case <-st.exited:
			StopTrying(fmt.Sprintf("localdev exited before it was ready: %v", st.exitErr)).Now()
		default:
		}
		log := readLog()
		k := kubeconfigLine.FindStringSubmatch(log)
		c := controlLine.FindStringSubmatch(log)
		g.Expect(k).NotTo(BeNil(), "no kubeconfig line yet")
		g.Expect(c).NotTo(BeNil(), "no control API line yet")
		st.kubeconfig, st.controlURL = k[1], c[1]
	}).WithTimeout(2*time.Minute).WithPolling(250*time.Millisecond).Should(Succeed(), func() string { return logTail(80) })
	Expect(st.kubeconfig).To(BeAnExistingFile())

	Eventually(func() error { _, err := kubectl("get", "wac"); return err }).
		WithTimeout(30*time.Second).WithPolling(500*time.Millisecond).Should(Succeed(), "kubectl reaches the API server")
})

var _ = AfterSuite(func() {
	if st.cmd == nil || st.cmd.Process == nil {
		return
	}
	started := descendants(st.cmd.Process.Pid)
	// Stop first and assert after, so that a failed assertion never leaves the stack running.
	signalErr := st.cmd.Process.Signal(syscall.SIGTERM)
	Eventually(st.exited).WithTimeout(60*time.Second).Should(BeClosed(), func() string { return logTail(80) })
	Expect(signalErr).NotTo(HaveOccurred(), "localdev was still running at the end")
	Expect(st.exitErr).NotTo(HaveOccurred(), "localdev's exit status after SIGTERM\n%s", logTail(80))
	Expect(started).To(ContainElements(HaveField("Comm", "kube-apiserver"), HaveField("Comm", "etcd")),
		"the stack's processes were found, so the check below means something")
	for _, p := range started {
		Expect(p.alive()).To(BeFalse(), "process %d (%s) outlived localdev", p.PID, p.Comm)
	}
	Expect(processesMentioning(st.stateDir)).To(BeEmpty(), "no process uses the state directory any more")
	_, err := kubectl("get", "wac", "--request-timeout=3s")
	Expect(err).To(HaveOccurred(), "the API server is gone")
	if !st.failed {
		Expect(os.RemoveAll(st.tmp)).To(Succeed())
	} else {
		AddReportEntry("e2e state kept for inspection", st.tmp, ReportEntryVisibilityAlways)
	}
})

// On failure, what a person would look at next.
var _ = JustAfterEach(func() {
	if !CurrentSpecReport().Failed() || st.kubeconfig == "" {
		return
	}
	st.failed = true
	var b strings.Builder
	for _, args := range [][]string{
		{"get", "wac,pod,pvc,lease", "-o", "wide"},
		{"describe", "wac"},
	} {
		out, err := kubectl(args...)
		fmt.Fprintf(&b, "$ kubectl %s\n%s%v\n", strings.Join(args, " "), out, errOrEmpty(err))
	}
	if body, err := controlGet("/devices"); err == nil {
		fmt.Fprintf(&b, "$ curl %s/devices\n%s\n", st.controlURL, body)
	}
	fmt.Fprintf(&b, "--- localdev log tail (%s)\n%s\n", st.logPath, logTail(120))
	GinkgoWriter.Print(b.String())
})

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// findKubectl prefers the machine's kubectl; otherwise the one hack/envtest-binaries.sh builds
// from Go modules (never a download).
func findKubectl(root string) string {
	if _, err := os.Stat("/usr/bin/kubectl"); err == nil {
		return "/usr/bin/kubectl"
	}
	// The script builds only what is missing, and prints where the binaries are.
	cmd := exec.Command(filepath.Join(root, "hack", "envtest-binaries.sh"), "kubectl")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "hack/envtest-binaries.sh kubectl:\n%s", stderr.String())
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return filepath.Join(lines[len(lines)-1], "kubectl")
}

func readLog() string {
	data, _ := os.ReadFile(st.logPath)
	return string(data)
}

func logTail(n int) string {
	lines := strings.Split(readLog(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
