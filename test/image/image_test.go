// Package image checks what the operator's image ships: exactly the manager and the session,
// static, non-root, with CA roots and zone data, and nothing of the development tools (the
// local runner, cmd/localdev, the fake WhatsApp server). It builds the image the way the
// real-cluster tests and `make image` do (hack/image.sh, no container engine) and reads the
// archive with the standard library only.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

const module = "github.com/waoperator/whatsapp-operator"

// shipped are the entry points of the image: the manager, and the session its pods run.
var shipped = []string{"/manager", "/session"}

// devOnly are packages that must never be linked into a shipped binary.
var devOnly = []string{module + "/test/", module + "/cmd/localdev", module + "/internal/localrunner", module + "/internal/testutil", module + "/internal/testtls"}

type archive struct {
	config struct {
		Config struct {
			Entrypoint []string
			User       string
			Env        []string
		} `json:"config"`
	}
	files map[string]*tar.Header
	data  map[string][]byte // executables only
}

func buildImage(t *testing.T, out string) string {
	t.Helper()
	cmd := exec.Command("../../hack/image.sh", out, "whatsapp-operator:test")
	cmd.Stderr = os.Stderr
	line, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/image.sh: %v", err)
	}
	fields := strings.Fields(string(line))
	if len(fields) != 3 {
		t.Fatalf("hack/image.sh printed %q, want ARCHIVE NAME DIGEST", line)
	}
	return fields[2]
}

// built is the image hack/image.sh makes, built once for the tests that read it.
var built struct {
	once         sync.Once
	path, digest string
	dir          string
}

func builtImage(t *testing.T) (path, digest string) {
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "image-test-")
		if err != nil {
			t.Fatal(err)
		}
		built.dir, built.path = dir, filepath.Join(dir, "image.tar")
		built.digest = buildImage(t, built.path)
	})
	if built.digest == "" {
		t.Fatal("the image build failed")
	}
	return built.path, built.digest
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func readArchive(t *testing.T, path string) archive {
	t.Helper()
	entries := map[string][]byte{}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = data
	}
	var manifest []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(entries["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v (%d images)", err, len(manifest))
	}
	a := archive{files: map[string]*tar.Header{}, data: map[string][]byte{}}
	if err := json.Unmarshal(entries[manifest[0].Config], &a.config); err != nil {
		t.Fatalf("image config: %v", err)
	}
	for _, l := range manifest[0].Layers {
		zr, err := gzip.NewReader(bytes.NewReader(entries[l]))
		if err != nil {
			t.Fatalf("layer %s: %v", l, err)
		}
		lr := tar.NewReader(zr)
		for {
			h, err := lr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := "/" + strings.TrimSuffix(h.Name, "/")
			a.files[name] = h
			if h.Typeflag == tar.TypeReg && h.Mode&0o111 != 0 {
				if a.data[name], err = io.ReadAll(lr); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return a
}

func TestImageShipsOnlyTheManagerAndTheSession(t *testing.T) {
	path, _ := builtImage(t)
	img := readArchive(t, path)

	var executables []string
	for name := range img.data {
		executables = append(executables, name)
	}
	slices.Sort(executables)
	if !slices.Equal(executables, shipped) {
		t.Fatalf("executables in the image: %v, want exactly %v", executables, shipped)
	}
	for _, name := range executables {
		bin := img.data[name]
		info, err := buildinfo.Read(bytes.NewReader(bin))
		if err != nil {
			t.Fatalf("%s: not a Go binary: %v", name, err)
		}
		if want := module + "/cmd" + name; info.Path != want {
			t.Errorf("%s is built from %s, want %s", name, info.Path, want)
		}
		for _, s := range info.Settings {
			if s.Key == "CGO_ENABLED" && s.Value != "0" || s.Key == "-tags" && s.Value != "" {
				t.Errorf("%s built with %s=%s: the image has no libc and ships no test build", name, s.Key, s.Value)
			}
		}
		// Function names stay in a stripped Go binary (the runtime needs them for stack
		// traces), so a linked package shows as its import path.
		for _, pkg := range devOnly {
			if bytes.Contains(bin, []byte(pkg)) {
				t.Errorf("%s links development-only code %s", name, pkg)
			}
		}
	}

	cfg := img.config.Config
	if !slices.Equal(cfg.Entrypoint, []string{"/manager"}) {
		t.Errorf("entrypoint %v, want [/manager]", cfg.Entrypoint)
	}
	if cfg.User != "65532:65532" {
		t.Errorf("user %q, want the non-root 65532:65532", cfg.User)
	}
	for _, f := range []string{"/etc/ssl/certs/ca-certificates.crt", "/usr/share/zoneinfo/Europe/Berlin", "/etc/passwd"} {
		if h := img.files[f]; h == nil || h.Typeflag == tar.TypeReg && h.Size == 0 {
			t.Errorf("image lacks %s", f)
		}
	}
	if h := img.files["/tmp"]; h == nil || h.Mode&0o1777 != 0o1777 {
		t.Errorf("image lacks a world-writable sticky /tmp")
	}
}

// The same sources give the same image, so a digest names what was tested.
func TestImageBuildIsReproducible(t *testing.T) {
	_, first := builtImage(t)
	second := buildImage(t, filepath.Join(t.TempDir(), "again.tar"))
	if first != second {
		t.Errorf("two builds of the same tree: digests %s and %s", first, second)
	}
}

// `make docker-build` (users with a Docker engine) builds the same entry points as the
// registry-free build: the Dockerfile once built ./cmd/..., which pulled in cmd/localdev and
// with it the fake server, outside the build context, so the image did not build at all.
func TestDockerfileBuildsOnlyWhatShips(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`go build [^\n]*-o /out/ ([^\n]+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("Dockerfile: no `go build ... -o /out/ PACKAGES` line")
	}
	var built []string
	for _, pkg := range strings.Fields(string(m[1])) {
		built = append(built, "/"+filepath.Base(pkg))
		if strings.Contains(pkg, "...") {
			t.Errorf("Dockerfile builds %s: a wildcard takes in every command, development ones too", pkg)
		}
	}
	slices.Sort(built)
	if !slices.Equal(built, shipped) {
		t.Errorf("Dockerfile builds %v, want %v", built, shipped)
	}
	if !bytes.Contains(data, []byte("CGO_ENABLED=0")) || !regexp.MustCompile(`(?m)^USER 65532:65532$`).Match(data) {
		t.Error("Dockerfile: binaries must be static (CGO_ENABLED=0) and the image non-root (USER 65532:65532)")
	}
}
