package main

import (
	"os/exec"
	"strings"
	"testing"
)

// A session's resident memory is mostly the pages of its own binary (docs/benchmarks.md,
// "session memory"), so what it links is what it costs, once per connection. These packages
// would bring back what the session was freed of: client-go's typed clientset and leader
// election register every API group, and controller-runtime's client and manager come with
// them. The session needs its Lease and its own resource only (internal/session/api.go).
func TestSessionLinksNeitherTheTypedClientsetNorTheManager(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	banned := map[string]bool{
		"k8s.io/client-go/kubernetes":                true,
		"k8s.io/client-go/kubernetes/scheme":         true,
		"k8s.io/client-go/tools/leaderelection":      true,
		"sigs.k8s.io/controller-runtime":             true,
		"sigs.k8s.io/controller-runtime/pkg/client":  true,
		"sigs.k8s.io/controller-runtime/pkg/manager": true,
		"sigs.k8s.io/controller-runtime/pkg/cache":   true,
		"sigs.k8s.io/controller-runtime/pkg/metrics": true,
	}
	allowedAPIGroups := map[string]bool{"k8s.io/api/core/v1": true, "k8s.io/api/coordination/v1": true}
	for _, pkg := range strings.Fields(string(out)) {
		if banned[pkg] || strings.HasPrefix(pkg, "k8s.io/api/") && !allowedAPIGroups[pkg] {
			t.Errorf("cmd/session links %s", pkg)
		}
	}
}
