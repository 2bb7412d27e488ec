package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// deps lists the packages cmd/session links in a build with tags.
func deps(t *testing.T, tags string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-tags", tags, "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	return strings.Fields(string(out))
}

// A session's resident memory is mostly the pages of its own binary (docs/benchmarks.md,
// "session memory"), so what it links is what it costs, once per connection. These packages
// would bring back what the session was freed of: client-go's typed clientset and leader
// election register every API group, and controller-runtime's client and manager come with
// them. The session needs its Lease and its own resource only (internal/session/api.go).
func TestSessionLinksNeitherTheTypedClientsetNorTheManager(t *testing.T) {
	banned := map[string]bool{
		"k8s.io/client-go/kubernetes":                true,
		"k8s.io/client-go/kubernetes/scheme":         true,
		"k8s.io/client-go/tools/leaderelection":      true,
		"sigs.k8s.io/controller-runtime":             true,
		"sigs.k8s.io/controller-runtime/pkg/client":  true,
		"sigs.k8s.io/controller-runtime/pkg/manager": true,
		"sigs.k8s.io/controller-runtime/pkg/cache":   true,
		"sigs.k8s.io/controller-runtime/pkg/metrics": true,
		// six counters and gauges are written by hand (internal/session/metrics.go)
		"github.com/prometheus/client_golang/prometheus": true,
	}
	allowedAPIGroups := map[string]bool{"k8s.io/api/core/v1": true, "k8s.io/api/coordination/v1": true}
	for _, pkg := range deps(t, "") {
		if banned[pkg] || strings.HasPrefix(pkg, "k8s.io/api/") && !allowedAPIGroups[pkg] {
			t.Errorf("cmd/session links %s", pkg)
		}
	}
}

// The fake WhatsApp server is for local mode and tests: only a build with the fakewa tag may
// contain it (internal/waendpoint), never the session that talks to the real WhatsApp.
func TestOnlyTheFakewaBuildLinksTheFakeServer(t *testing.T) {
	const fake = "github.com/waoperator/whatsapp-operator/test/fakewa"
	if slices.Contains(deps(t, ""), fake) {
		t.Errorf("the default build of cmd/session links %s", fake)
	}
	if !slices.Contains(deps(t, "fakewa"), fake) {
		t.Errorf("the fakewa build of cmd/session does not link %s: local mode could not reach the fake server", fake)
	}
}
