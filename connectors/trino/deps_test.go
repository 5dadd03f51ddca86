package trino

import (
	"testing"

	"github.com/liminal-data/liminal/internal/depcheck"
)

func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "engine", "coordinator", "infer", "cmd", "spec", "connectors/file", "connectors/postgres", "connectors/duckdb", "connectors/hive")
}
