package checks

import (
	"testing"

	"github.com/liminal-data/liminal/internal/depcheck"
)

// TestDeps keeps checks a library of the coordinator: spec and the
// standard library only.
func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "engine", "connectors", "coordinator", "cmd", "alert", "infer", "partition")
}
