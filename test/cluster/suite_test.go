//go:build cluster

// Package cluster runs the operator on a real single-node cluster (hack/cluster.sh: a kubelet
// with containerd, runc and CNI, kube-proxy, the controller manager and scheduler), installed
// the way users install it (the Helm chart; dist/install.yaml), from the image hack/image.sh
// builds, and drives it with the real kubectl. The session pods run a test image: the fakewa
// build of the session behind a relay to the fake WhatsApp server this suite runs on the node
// (test/cluster/cmd/session-relay); the operator's own image never holds the fake.
//
// The build tag keeps it out of `go test ./...`: `make test-cluster` starts the cluster, runs
// it and tears the cluster down.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/test/cluster/internal/relay"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

const (
	operatorImage = "whatsapp-operator:e2e"
	sessionImage  = "whatsapp-operator-session-fakewa:e2e"
	crdName       = "whatsappconnections.whatsapp.waoperator.io"
)

// env is the cluster and what the suite built and started on it.
type env struct {
	root       string
	tmp        string
	kubectl    string
	helm       string
	kustomize  string
	kubeconfig string
	clusterDir string
	nodeName   string
	nodeIP     string
	fake       *fakewa.Server
	relay      net.Listener
}

var e env

func TestCluster(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Real-cluster suite")
}

var _ = BeforeSuite(func() {
	var err error
	e.root, err = filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	e.tmp = GinkgoT().TempDir()

	// The cluster is hack/cluster.sh's (make test-cluster starts it): its addresses.
	out := run(e.root, "hack/cluster.sh", "env")
	vars := map[string]string{}
	for _, kv := range strings.Fields(out) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	e.kubeconfig, e.clusterDir, e.nodeName, e.nodeIP = vars["KUBECONFIG"], vars["CLUSTER_DIR"], vars["NODE"], vars["NODE_IP"]
	bin := os.Getenv("ENVTEST_DIR")
	if bin == "" {
		bin = filepath.Join(e.root, "bin", "k8s", "1.37.2")
	}
	e.kubectl = filepath.Join(bin, "kubectl")
	Expect(kubectl("get", "--raw", "/readyz")).To(Equal("ok"), "hack/cluster.sh up first (make test-cluster does)")

	// Everything is built before any timed wait.
	// The tools go where the Makefile keeps them (LOCALBIN, as make test-cluster passes it).
	localbin := os.Getenv("LOCALBIN")
	if localbin == "" {
		localbin = filepath.Join(e.root, "bin")
	}
	run(e.root, "make", "--no-print-directory", "LOCALBIN="+localbin, "helm", "kustomize")
	e.helm, e.kustomize = filepath.Join(localbin, "helm"), filepath.Join(localbin, "kustomize")
	operatorArchive := filepath.Join(e.tmp, "operator.tar")
	run(e.root, "hack/image.sh", operatorArchive, operatorImage)

	// The fake WhatsApp on the node's loopback, and a relay to it on the node IP, the address
	// pods reach the node at.
	e.fake, err = fakewa.Start(fakewa.Options{})
	Expect(err).NotTo(HaveOccurred())
	e.relay, err = net.Listen("tcp", net.JoinHostPort(e.nodeIP, "0"))
	Expect(err).NotTo(HaveOccurred())
	go relay.Serve(e.relay, e.fake.Addr(), nil)
	sessionArchive := buildSessionImage()

	run(e.root, "hack/cluster.sh", "import", operatorArchive, sessionArchive)
})

var _ = AfterSuite(func() {
	if e.relay != nil {
		_ = e.relay.Close()
	}
	if e.fake != nil {
		_ = e.fake.Close()
	}
})

// buildSessionImage writes the test session image: the relay as /session (the command the
// controller gives session pods), the fakewa build of cmd/session, the fake server's client
// config naming the pod's loopback, where the relay listens, /resolve for kubectl exec, and
// /send-client, an application's call to a send API, for pods of the suite's own.
func buildSessionImage() string {
	dir := filepath.Join(e.tmp, "session-image")
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	goBuild := func(out, pkg string, tags ...string) {
		args := []string{"build", "-trimpath", "-o", filepath.Join(dir, out)}
		if len(tags) > 0 {
			args = append(args, "-tags", strings.Join(tags, ","))
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = e.root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		b, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "go build %s: %s", pkg, b)
	}
	goBuild("session-relay", "./test/cluster/cmd/session-relay")
	goBuild("session-fakewa", "./cmd/session", "fakewa")
	goBuild("resolve", "./test/cluster/cmd/resolve")
	goBuild("send-client", "./test/cluster/cmd/send-client")

	_, port, err := net.SplitHostPort(e.fake.Addr())
	Expect(err).NotTo(HaveOccurred())
	cfg := e.fake.ClientConfig()
	cfg.Address = net.JoinHostPort("127.0.0.1", port)
	data, err := json.Marshal(cfg)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(filepath.Join(dir, "fakewa.json"), data, 0o644)).To(Succeed())

	tool := filepath.Join(dir, "image-tool")
	build := exec.Command("go", "build", "-o", tool, ".")
	build.Dir = filepath.Join(e.root, "hack", "tools", "image")
	b, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "image tool: %s", b)
	archive := filepath.Join(e.tmp, "session.tar")
	run(e.root, tool, "-o", archive, "-tag", sessionImage, "-entrypoint", "/session",
		"-file", "/session="+filepath.Join(dir, "session-relay")+":0755",
		"-file", "/session-fakewa="+filepath.Join(dir, "session-fakewa")+":0755",
		"-file", "/resolve="+filepath.Join(dir, "resolve")+":0755",
		"-file", "/send-client="+filepath.Join(dir, "send-client")+":0755",
		"-file", "/fakewa.json="+filepath.Join(dir, "fakewa.json")+":0644",
		"-env", "WAOPERATOR_FAKEWA_CONFIG=/fakewa.json",
		"-env", "FAKEWA_RELAY_LISTEN="+cfg.Address,
		"-env", "FAKEWA_RELAY_TARGET="+e.relay.Addr().String())
	return archive
}

// run is a build or setup command: it must work.
func run(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.kubeconfig)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "%s %s: %s", name, strings.Join(args, " "), stderr.String())
	return string(out)
}

// kubectl runs the real kubectl and returns stdout; the error carries stderr.
func kubectl(args ...string) (string, error) {
	return kubectlIn("", args...)
}

func kubectlIn(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.kubectl, append([]string{"--kubeconfig", e.kubeconfig}, args...)...)
	cmd.Dir = e.root
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	return kubectlOutput(cmd, args)
}

// kubectlOutput runs cmd, a kubectl with args, and returns its stdout; an error carries its stderr.
func kubectlOutput(cmd *exec.Cmd, args []string) (string, error) {
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// gone waits until the object is gone: a cleanup is over only when its deletions are, or the
// next spec meets a namespace or a CRD still terminating.
func gone(args ...string) {
	EventuallyWithOffset(1, func() error {
		_, err := kubectl(append([]string{"get"}, args...)...)
		return err
	}).WithTimeout(3 * time.Minute).WithPolling(2 * time.Second).Should(MatchError(ContainSubstring("NotFound")))
}

func mustKubectl(args ...string) string {
	out, err := kubectl(args...)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return out
}

// ctr runs containerd's own client against the cluster's private containerd.
func ctr(args ...string) (string, error) {
	cmd := exec.Command("ctr", append([]string{"--address", filepath.Join(e.clusterDir, "containerd", "containerd.sock"), "-n", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
