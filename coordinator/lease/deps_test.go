package lease

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/liminal-data/liminal/internal/depcheck"
)

// TestDeps keeps lease pure: standard library and partition only; no
// engine, infer, cmd, coordinator, connectors (nor their implementations),
// net/http or gRPC.
func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "engine", "infer", "cmd", "coordinator/worker", "connectors", "runstore", "api")
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		depcheck.Module + "/coordinator/lease": true,
		depcheck.Module + "/partition":         true,
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "net/http" || strings.HasPrefix(dep, "net/http/"), strings.HasPrefix(dep, "google.golang.org/grpc"):
			t.Errorf("imports %s: the network layer drives lease, not the other way round", dep)
		case strings.Contains(strings.SplitN(dep, "/", 2)[0], ".") && !allowed[dep]:
			t.Errorf("imports %s: lease is standard library plus partition only", dep)
		}
	}
}
