package onnx

import (
	"testing"

	"github.com/liminal-data/liminal/internal/depcheck"
)

// TestDeps keeps infer/onnx a leaf: no engine, connectors, coordinator, spec.
func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "engine", "connectors", "coordinator", "spec", "partition", "cmd")
}
