package cluster

import (
	"testing"

	"github.com/liminal-data/liminal/internal/depcheck"
)

// TestDeps: the worker's engine and the run service are handed in as
// interfaces; cluster never imports them.
func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "engine", "infer", "cmd", "coordinator/worker", "api", "connectors/file", "connectors/postgres",
		"connectors/trino", "connectors/hive", "connectors/duckdb", "connectors/all")
}
