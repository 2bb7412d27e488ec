package image

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// `make docker-build` sees only the directories the Dockerfile COPYs, and of those only what
// .dockerignore lets into the build context, while hack/image.sh builds from the whole tree: a
// shipped command that imported a package outside the context (test/fakewa, hack/...) would
// still build here and break the Dockerfile build. Every package of the module that the shipped
// commands link must lie under a directory the Dockerfile copies, and none may be a development
// one.
func TestShippedCommandsBuildFromTheDockerContext(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var copied []string
	for _, m := range regexp.MustCompile(`(?m)^COPY ([a-z]+)/ `).FindAllStringSubmatch(string(data), -1) {
		copied = append(copied, module+"/"+m[1]+"/")
	}
	if len(copied) == 0 {
		t.Fatal("Dockerfile: no `COPY dir/ dir/` lines")
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range copied {
		rel := strings.TrimPrefix(dir, module+"/")
		if !regexp.MustCompile(`(?m)^!` + regexp.QuoteMeta(rel) + `\*\*$`).Match(ignore) {
			t.Errorf(".dockerignore does not let %s into the build context (want a line !%s**)", rel, rel)
		}
	}
	args := []string{"list", "-deps"}
	for _, s := range shipped {
		args = append(args, "./cmd"+s)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	linked := 0
	for _, pkg := range strings.Fields(string(out)) {
		if !strings.HasPrefix(pkg, module+"/") {
			continue
		}
		linked++
		if !slices.ContainsFunc(copied, func(dir string) bool { return strings.HasPrefix(pkg+"/", dir) }) {
			t.Errorf("a shipped command links %s, outside the Dockerfile's build context %v", pkg, copied)
		}
		if slices.ContainsFunc(devOnly, func(dev string) bool { return strings.HasPrefix(pkg, dev) }) {
			t.Errorf("a shipped command links the development package %s", pkg)
		}
	}
	if linked < len(shipped) {
		t.Fatalf("go list found %d packages of the module, want at least the %d commands", linked, len(shipped))
	}
}
