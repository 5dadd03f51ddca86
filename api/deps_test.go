package api

import (
	"testing"

	"github.com/liminal-data/liminal/internal/depcheck"
)

func TestAPIDeps(t *testing.T) {
	depcheck.Forbid(t, "engine", "infer", "cmd")
}
