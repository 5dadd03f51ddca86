package engine

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestArrowProjection: queries that read only some columns of a Go-side
// table (DuckDB pushes the projection into its Arrow scan, which the C-API
// stream cannot apply) get the right columns, not a crash.
func TestArrowProjection(t *testing.T) {
	e := newEngine(t, 1)
	for q, want := range map[string]int64{
		"SELECT count(*) AS x FROM t":                                    1,
		"SELECT max(length(s)) AS x FROM t":                              1,
		"SELECT s, count(*) AS x FROM t GROUP BY s":                      5,
		"SELECT x FROM t WHERE x > 4990":                                 7,
		"SELECT sum(x) AS x FROM t WHERE s = 'v1'":                       1,
		"SELECT x FROM (SELECT s, x FROM t) WHERE s = 'v3' AND x > 4900": 17,
	} {
		t.Run(q, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			var out collect
			res, err := e.Execute(context.Background(), Job{
				Tables: []Table{{Name: "t", Reader: batches(mem, 5000, 700)}},
				Query:  q,
				Output: Output{Writer: &out},
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Rows != want {
				t.Fatalf("%d rows, want %d", res.Rows, want)
			}
			mem.AssertSize(t, 0)
		})
	}
}
