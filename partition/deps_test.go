package partition

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps partition a leaf: standard library only.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/liminal-data/liminal/partition" {
			t.Errorf("partition imports %s", p)
		}
	}
}
