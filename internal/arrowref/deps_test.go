package arrowref

import (
	"testing"

	"github.com/liminal-data/liminal/internal/depcheck"
)

// TestDeps keeps arrowref importable by every package: nothing of ours.
func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "engine", "connectors", "coordinator", "infer", "spec", "partition", "cmd", "api", "checks")
}
