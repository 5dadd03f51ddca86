package alert

import (
	"testing"

	"github.com/liminal-data/liminal/internal/depcheck"
)

// TestDeps keeps alert a library of the coordinator: spec and the
// standard library only.
func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "engine", "connectors", "coordinator", "cmd", "checks", "infer", "partition")
}
