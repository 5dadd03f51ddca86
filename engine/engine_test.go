package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func newEngine(t *testing.T, slots int) *Engine {
	t.Helper()
	e, err := New(Options{Slots: slots, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// batches builds n rows (x int64 with every 7th NULL, s string) cut into
// batches of size rows, from mem.
func batches(mem memory.Allocator, n, size int) array.RecordReader {
	sc := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, {Name: "s", Type: arrow.BinaryTypes.String}}, nil)
	var recs []arrow.RecordBatch
	for lo := 0; lo < n; lo += size {
		b := array.NewRecordBuilder(mem, sc)
		for i := lo; i < min(n, lo+size); i++ {
			if i%7 == 0 {
				b.Field(0).(*array.Int64Builder).AppendNull()
			} else {
				b.Field(0).(*array.Int64Builder).Append(int64(i))
			}
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("v%d", i%5))
		}
		recs = append(recs, b.NewRecordBatch())
		b.Release()
	}
	r, _ := array.NewRecordReader(sc, recs)
	for _, rec := range recs {
		rec.Release()
	}
	return r
}

type collect struct {
	mu   sync.Mutex
	rows int64
	sum  int64
}

func (c *collect) Write(_ context.Context, b arrow.RecordBatch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows += b.NumRows()
	if b.NumCols() < 2 {
		return nil
	}
	col, ok := b.Column(1).(*array.Int64)
	if !ok {
		return nil
	}
	for i := 0; i < col.Len(); i++ {
		if col.IsValid(i) {
			c.sum += col.Value(i)
		}
	}
	return nil
}

// TestArrowPath: batches from Go go into DuckDB through RegisterView and
// come back through the Arrow interface; the result does not depend on the
// batch size, and every Go-allocated byte is released.
func TestArrowPath(t *testing.T) {
	e := newEngine(t, 1)
	const n = 5000
	var want int64
	for i := range n {
		if i%7 != 0 && i%5 == 2 {
			want += int64(i)
		}
	}
	for _, size := range []int{1, 2, 3, 16, 1024, n} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			var out collect
			res, err := e.Execute(context.Background(), Job{
				Tables: []Table{{Name: "t", Reader: batches(mem, n, size)}},
				Query:  "SELECT s, x FROM t WHERE s = 'v2'",
				Output: Output{Writer: &out},
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Rows != n/5 || out.rows != n/5 || out.sum != want {
				t.Fatalf("rows %d/%d sum %d, want %d rows sum %d", res.Rows, out.rows, out.sum, n/5, want)
			}
			mem.AssertSize(t, 0)
		})
	}
}

// TestArrowMaterialized: a Go-side table read twice by the query (a
// broadcast input) is materialized once.
func TestArrowMaterialized(t *testing.T) {
	e := newEngine(t, 1)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	var out collect
	_, err := e.Execute(context.Background(), Job{
		Tables: []Table{{Name: "d", Reader: batches(mem, 100, 10), Materialize: true}},
		Query:  "SELECT a.s, count(*) AS x FROM d a JOIN d b USING (s) GROUP BY a.s",
		Output: Output{Writer: &out},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.rows != 5 || out.sum != 5*20*20 {
		t.Fatalf("rows %d sum %d", out.rows, out.sum)
	}
	mem.AssertSize(t, 0)
}

func TestMemoryAndCopyOutputs(t *testing.T) {
	e := newEngine(t, 2)
	dir := t.TempDir()
	part := e.TableName("partial")
	r, err := e.Execute(context.Background(), Job{Query: "SELECT i, i % 3 AS k FROM range(1000) r(i)", Output: Output{Memory: part}})
	if err != nil || r.Rows != 1000 {
		t.Fatalf("memory output: %v %d", err, r.Rows)
	}
	// Another slot reads the partial through the shared instance.
	r, err = e.Execute(context.Background(), Job{
		Tables: []Table{{Name: PartialsTable, Scan: ident(part)}},
		Query:  "SELECT k, sum(i) AS s FROM " + PartialsTable + " GROUP BY k",
		Output: Output{CopyTo: "'" + dir + "/out.parquet' (FORMAT parquet)"},
	})
	if err != nil || r.Rows != 3 {
		t.Fatalf("copy output: %v %d", err, r.Rows)
	}
	if err := e.DropTables(context.Background(), part, "missing"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Execute(context.Background(), Job{Query: "SELECT * FROM " + ident(part), Output: Output{Writer: &collect{}}}); err == nil {
		t.Fatal("dropped table still there")
	}
}

func TestExecuteErrors(t *testing.T) {
	e := newEngine(t, 1)
	ctx := context.Background()
	_, err := e.Execute(ctx, Job{Query: "SELECT CAST('x' AS INTEGER)", Output: Output{CopyTo: "'" + t.TempDir() + "/o.parquet' (FORMAT parquet)"}})
	if err == nil || !IsUserError(err) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("conversion error: %v (user error: %v)", err, IsUserError(err))
	}
	if _, err := e.Execute(ctx, Job{Query: "SELECT 1"}); err == nil {
		t.Fatal("job without output accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.Execute(cctx, Job{Query: "SELECT 1", Output: Output{Writer: &collect{}}}); err == nil {
		t.Fatal("cancelled context accepted")
	}
	// The slot is clean after errors: the view names are free again.
	if _, err := e.Execute(ctx, Job{Tables: []Table{{Name: "t", Scan: "range(3)"}}, Query: "SELECT * FROM t", Output: Output{Writer: &collect{}}}); err != nil {
		t.Fatal(err)
	}
}

// TestTimeZoneIsUTC: TIMESTAMPTZ results carry UTC whatever the host's time
// zone (DuckDB's session default), so output files do not depend on it.
func TestTimeZoneIsUTC(t *testing.T) {
	t.Setenv("TZ", "America/New_York")
	e := newEngine(t, 1)
	sc, err := e.ResultSchema(context.Background(), "SELECT TIMESTAMPTZ '2024-01-02 03:04:05+00' AS ts, CAST(TIMESTAMPTZ '2024-01-02 03:04:05+00' AS VARCHAR) AS s")
	if err != nil {
		t.Fatal(err)
	}
	if tt, ok := sc.Field(0).Type.(*arrow.TimestampType); !ok || tt.TimeZone != "UTC" {
		t.Errorf("TIMESTAMPTZ maps to %s, want timestamp[us, tz=UTC]", sc.Field(0).Type)
	}
}

// TestJobNative: jobs DuckDB runs on its own take every slot's share; jobs
// that wait on Go (Arrow tables, scoring, a Go writer) take one.
func TestJobNative(t *testing.T) {
	r := batches(memory.DefaultAllocator, 1, 1)
	defer r.Release()
	tests := map[string]struct {
		j    Job
		want bool
	}{
		"copy":      {Job{Tables: []Table{{Name: "t", Scan: "range(3)"}}, Output: Output{CopyTo: "'x.parquet'"}}, true},
		"memory":    {Job{Output: Output{Memory: "p"}}, true},
		"go table":  {Job{Tables: []Table{{Name: "t", Reader: r}}, Output: Output{CopyTo: "'x.parquet'"}}, false},
		"go writer": {Job{Output: Output{Writer: &collect{}}}, false},
	}
	for name, tt := range tests {
		if got := tt.j.native(); got != tt.want {
			t.Errorf("%s: native = %t, want %t", name, got, tt.want)
		}
	}
}
