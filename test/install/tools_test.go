package install_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

var root = func() string {
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return abs
}()

// tool returns bin/<name>-<version> at the version hack/tools/<name>/go.mod pins (the binary the
// Makefile builds), building it from that module first when it is missing.
func tool(t testing.TB, name, module, pkg string) string {
	t.Helper()
	dir := filepath.Join(root, "hack", "tools", name)
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatalf("reading the %s tools module: %v", name, err)
	}
	m := regexp.MustCompile(`(?m)` + regexp.QuoteMeta(module) + ` (v\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatalf("%s/go.mod does not require %s", dir, module)
	}
	bin := filepath.Join(localBin(), name+"-"+string(m[1]))
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t.Logf("building %s (make %s does the same; cold this takes minutes)", bin, name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s failed (run make %s to see why): %v\n%s", name, name, err, out)
	}
	return bin
}

// localBin is where the Makefile keeps its tools: $LOCALBIN when set (make passes its
// LOCALBIN=... on), else the repository's bin.
func localBin() string {
	if dir := os.Getenv("LOCALBIN"); dir != "" {
		return dir
	}
	return filepath.Join(root, "bin")
}

func kustomize(t testing.TB) string {
	return tool(t, "kustomize", "sigs.k8s.io/kustomize/kustomize/v5", "sigs.k8s.io/kustomize/kustomize/v5")
}

func helm(t testing.TB) string {
	return tool(t, "helm", "helm.sh/helm/v3", "helm.sh/helm/v3/cmd/helm")
}

// run runs a tool and returns its standard output, failing with its standard error.
func run(t testing.TB, dir, bin string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", fmt.Sprint(append([]string{filepath.Base(bin)}, args...)), err, stderr.String())
	}
	return stdout.Bytes()
}
