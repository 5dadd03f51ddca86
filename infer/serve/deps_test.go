package serve

import (
	"testing"

	"github.com/liminal-data/liminal/internal/depcheck"
)

// TestDeps keeps serve next to infer: no engine, connectors, coordinator,
// spec, partition or cmd.
func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "engine", "connectors", "coordinator", "spec", "partition", "cmd")
}
