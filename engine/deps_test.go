package engine

import (
	"testing"

	"github.com/liminal-data/liminal/internal/depcheck"
)

func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "connectors", "coordinator", "infer", "cmd", "spec")
}
