package metrics

import (
	"testing"

	"github.com/liminal-data/liminal/internal/depcheck"
)

func TestMetricsDeps(t *testing.T) {
	depcheck.Forbid(t, "engine", "infer", "cmd", "api")
}
