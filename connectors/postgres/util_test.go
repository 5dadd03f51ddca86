package postgres

import (
	"context"
	"math"
	"testing"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/connectors/conformance"
	"github.com/liminal-data/liminal/partition"
)

func negInf() float64 { return math.Inf(-1) }
func nan() float64    { return math.NaN() }

// readAll reads every row of src, unpartitioned.
func readAll(t testing.TB, src connectors.ArrowSource, cols []string) [][]any {
	t.Helper()
	ctx := context.Background()
	splits, err := src.Splits(ctx, partition.Options{By: partition.None})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]any
	for _, sp := range splits {
		r, err := src.Read(ctx, sp, cols)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := conformance.ReadAll(r)
		r.Release()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rows...)
	}
	return out
}
