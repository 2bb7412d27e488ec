package controllers

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOneManagerSetup: every manager that runs the reconciler is built by NewManager, so that
// none forgets the cache options, the health checks or the metrics (the chaos suite once ran
// without the cache options). Only NewManager calls ctrl.NewManager and NewReconciler.
func TestOneManagerSetup(t *testing.T) {
	allowed := map[string]bool{
		"controllers/manager.go": true,
		// The runner's example builds a bare manager with no reconciler.
		"internal/localrunner/example_test.go": true,
	}
	setup := regexp.MustCompile(`\bctrl\.NewManager\(|\bmanager\.New\(|\bNewReconciler\(\w+,`)
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin" || d.Name() == "vendor" || d.Name() == ".local") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if allowed[rel] || rel == "controllers/manager_test.go" {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if loc := setup.FindIndex(src); loc != nil {
			line := 1 + strings.Count(string(src[:loc[0]]), "\n")
			t.Errorf("%s:%d builds a manager or reconciler by hand; use controllers.NewManager", rel, line)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
