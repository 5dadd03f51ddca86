package trino_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/liminal-data/liminal/connectors"
	_ "github.com/liminal-data/liminal/connectors/file"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/coordinator/worker"
	"github.com/liminal-data/liminal/engine"
	"github.com/liminal-data/liminal/partition"
)

// TestEndToEndIntegration runs a task through the coordinator, the worker
// and the engine: tpch.tiny.orders read from Trino in range splits on
// orderkey, aggregated by DuckDB, written to a Parquet directory sink, and
// compared with the same aggregation computed by Trino itself.
func TestEndToEndIntegration(t *testing.T) {
	ctx := context.Background()
	// The source selects exactly the columns the task reads, in the order
	// DuckDB binds them: the engine's streamed Arrow views ignore DuckDB's
	// projection (see TestEngineProjectionIntegration), so a task must
	// read every column of a streamed source, in order, to get right
	// answers until the engine applies the projection itself.
	src, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: "orders",
		URI: server(t) + "/tpch/tiny", Options: map[string]string{"partition_column": "orderkey",
			"query": "SELECT orderkey, totalprice, orderdate FROM orders"}})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	sink, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: "out", URI: out, Format: "parquet", Mode: connectors.ModeOverwrite})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	const agg = `SELECT max(orderkey) AS max_key, sum(totalprice) AS total, year(orderdate) AS y, count(*) AS n,
		min(orderdate) AS first_date FROM orders GROUP BY year(orderdate)`
	task := &coordinator.Task{Name: "agg", Query: agg, Sources: map[string]connectors.Source{"orders": src},
		Sink: sink, Partition: partition.Options{TargetRows: 4000}, Driving: "orders"}
	w := worker.New(eng)
	defer w.Close()
	res := coordinator.New(w, coordinator.Options{}).Run(ctx, "run-trino-e2e", "", []*coordinator.Task{task})
	if res.Status != coordinator.StatusSucceeded {
		t.Fatalf("run %s: %s", res.Status, res.Error)
	}
	if p := res.Tasks[0].Partitions; p < 2 {
		t.Errorf("%d partitions, want several range splits", p)
	}
	t.Logf("plan %s, %d partitions, %d rows in", res.Tasks[0].Plan, res.Tasks[0].Partitions, res.Tasks[0].RowsIn)

	files, _ := filepath.Glob(filepath.Join(out, "*.parquet"))
	if len(files) == 0 {
		t.Fatalf("no parquet output in %s", out)
	}
	duck, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	got := render(t, duck, "SELECT y, n, total, CAST(first_date AS VARCHAR), max_key FROM read_parquet(['"+strings.Join(files, "','")+"'])")
	want := render(t, admin(t), "SELECT year(orderdate), count(*), sum(totalprice), CAST(min(orderdate) AS VARCHAR), max(orderkey) FROM tpch.tiny.orders GROUP BY 1")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("liminal:\n%s\ntrino:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// render returns q's rows as sorted text, floats to 6 decimals (sums in a
// different order differ in the last bits).
func render(t testing.TB, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		v := make([]any, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rows.Scan(p...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(v))
		for i, x := range v {
			switch y := x.(type) {
			case float64:
				parts[i] = fmt.Sprintf("%.6f", y)
			case int32:
				parts[i] = fmt.Sprint(int64(y))
			default:
				parts[i] = fmt.Sprint(y)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestEngineProjectionIntegration is the natural end-to-end task: the whole
// orders table streamed, grouped by a string. It used to fail because the
// engine's streamed Arrow views (go-duckdb RegisterView) ignored the
// projection DuckDB asks the stream for ("SELECT sum(d) FROM t" over
// columns (k, d) read k's bytes as d; a GROUP BY on a string column that
// is not the first crashed DuckDB). The engine keeps every column of a Go-side source in DuckDB's scan
// (engine.TestArrowProjection), so this reads correctly.
func TestEngineProjectionIntegration(t *testing.T) {
	ctx := context.Background()
	src, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: "orders",
		URI: server(t) + "/tpch/tiny?table=orders", Options: map[string]string{"partition_column": "orderkey"}})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	sink, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: "out", URI: out, Format: "parquet", Mode: connectors.ModeOverwrite})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	task := &coordinator.Task{Name: "agg", Sources: map[string]connectors.Source{"orders": src}, Sink: sink,
		Query:     `SELECT orderstatus, count(*) AS n, sum(totalprice) AS total, min(orderdate) AS first_date FROM orders GROUP BY orderstatus`,
		Partition: partition.Options{TargetRows: 4000}, Driving: "orders"}
	w := worker.New(eng)
	defer w.Close()
	res := coordinator.New(w, coordinator.Options{}).Run(ctx, "run-trino-e2e-2", "", []*coordinator.Task{task})
	if res.Status != coordinator.StatusSucceeded {
		t.Fatalf("run %s: %s", res.Status, res.Error)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.parquet"))
	duck, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	// totalprice is a DOUBLE: partial sums added in another order differ
	// in the last bits, so the sums compare to the cent.
	got := render(t, duck, "SELECT orderstatus, n, round(total, 2), CAST(first_date AS VARCHAR) FROM read_parquet(['"+strings.Join(files, "','")+"'])")
	want := render(t, admin(t), "SELECT orderstatus, count(*), round(sum(totalprice), 2), CAST(min(orderdate) AS VARCHAR) FROM tpch.tiny.orders GROUP BY orderstatus")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("liminal:\n%s\ntrino:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
