// Package depcheck enforces the import rules of ARCHITECTURE.md in tests:
// each package's deps_test.go lists the liminal packages it must not
// depend on, directly or not. It imports only the standard library.
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// Module is the liminal module path.
const Module = "github.com/liminal-data/liminal"

// Forbid fails t if the package in the current directory depends on any of
// the given liminal packages (paths relative to the module, e.g. "engine").
func Forbid(t testing.TB, forbidden ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			p := Module + "/" + f
			if dep == p || strings.HasPrefix(dep, p+"/") {
				t.Errorf("imports %s, which ARCHITECTURE.md forbids here", dep)
			}
		}
	}
}
