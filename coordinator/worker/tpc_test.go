package worker_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/coordinator/worker"
	"github.com/liminal-data/liminal/engine"
	"github.com/liminal-data/liminal/partition"
)

// tpcSF is the scale factor of the TPC-H and TPC-DS corpus tests: small in
// make test, larger with -tpc-sf (e.g. go test ./coordinator/worker -run TPC -tpc-sf 1).
var tpcSF = flag.Float64("tpc-sf", 0.01, "scale factor of the TPC-H/TPC-DS corpus tests")

// tpcData generates a benchmark's tables with DuckDB's bundled generator
// (dbgen or dsdgen) and writes each as a directory of Parquet files; the
// big tables are cut into several files of small row groups so that they
// split into many partitions. It returns the directory, the table names and
// the benchmark's queries (as the extension ships them, trailing ";"
// included).
func tpcData(t *testing.T, gen, queries string, sf float64) (string, []string, []string) {
	t.Helper()
	dir := t.TempDir()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(fmt.Sprintf("CALL %s(sf = %g)", gen, sf)); err != nil {
		t.Fatalf("%s: %v", gen, err)
	}
	var tables []string
	for _, r := range queryRows(t, db, "SELECT table_name FROM duckdb_tables() ORDER BY table_name") {
		tables = append(tables, fmt.Sprint(r[0]))
	}
	for _, tb := range tables {
		if err := os.MkdirAll(filepath.Join(dir, tb), 0o755); err != nil {
			t.Fatal(err)
		}
		n := queryRows(t, db, "SELECT count(*) FROM "+tb)[0][0].(int64)
		files := int64(1)
		if n > 20000 {
			files = 4
		}
		for f := range files {
			q := fmt.Sprintf("SELECT * FROM %s LIMIT %d OFFSET %d", tb, (n+files-1)/files, f*((n+files-1)/files))
			out := filepath.Join(dir, tb, fmt.Sprintf("%s-%d.parquet", tb, f))
			if _, err := db.Exec(fmt.Sprintf("COPY (%s) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 2048)", q, out)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var qs []string
	for _, r := range queryRows(t, db, "SELECT query FROM "+queries+"() ORDER BY query_nr") {
		qs = append(qs, fmt.Sprint(r[0]))
	}
	return dir, tables, qs
}

// tpcReference runs q in one DuckDB over the whole input.
func tpcReference(t *testing.T, dir string, tables []string, q string) [][]any {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tb := range tables {
		if _, err := db.Exec(fmt.Sprintf("CREATE VIEW %s AS SELECT * FROM read_parquet('%s/*.parquet')", tb, filepath.Join(dir, tb))); err != nil {
			t.Fatal(err)
		}
	}
	return queryRows(t, db, q)
}

// tpcRun runs q through the coordinator over every table, partitioned
// with o (the planner picks the driving table: the largest one read).
func tpcRun(t *testing.T, eng *engine.Engine, dir string, tables []string, q, out string, o partition.Options) (*coordinator.RunResult, error) {
	t.Helper()
	ctx := context.Background()
	srcs := map[string]connectors.Source{}
	for _, tb := range tables {
		s, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: tb, URI: filepath.Join(dir, tb)})
		if err != nil {
			return nil, err
		}
		srcs[tb] = s
	}
	sink, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: "out", URI: out, Mode: connectors.ModeOverwrite})
	if err != nil {
		return nil, err
	}
	task := &coordinator.Task{Name: "q", Query: q, Sources: srcs, Sink: sink, Partition: o}
	res := coordinator.New(worker.New(eng), coordinator.Options{}).Run(ctx, "run-1", "", []*coordinator.Task{task})
	if res.Status != coordinator.StatusSucceeded {
		return res, fmt.Errorf("%s", res.Error)
	}
	return res, nil
}

// runTPC runs every query of a benchmark partitioned by each of
// maxParts (1 = the whole input as one partition) and compares it with one
// DuckDB over the whole input. It logs how many queries ran on more than
// one partition.
func runTPC(t *testing.T, gen, queries string, maxParts []int) {
	if testing.Short() {
		t.Skip("generates and runs a benchmark")
	}
	dir, tables, qs := tpcData(t, gen, queries, *tpcSF)
	eng, err := engine.New(engine.Options{Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	refs := make([][][]any, len(qs))
	for i, q := range qs {
		refs[i] = tpcReference(t, dir, tables, q)
	}
	for _, n := range maxParts {
		o := partition.Options{By: partition.None}
		if n > 1 {
			o = partition.Options{MaxPartitions: n, TargetRows: 1}
		}
		split, kinds := 0, map[string]int{}
		for i, q := range qs {
			t.Run(fmt.Sprintf("p%d/q%02d", n, i+1), func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out")
				res, err := tpcRun(t, eng, dir, tables, q, out, o)
				if err != nil {
					t.Fatalf("q%d: %v\n%s", i+1, err, q)
				}
				tr := res.Tasks[0]
				kinds[tr.Plan]++
				if tr.Partitions > 1 {
					split++
				}
				if d := sameRows(readOutput(t, out), refs[i], false); d != "" {
					t.Fatalf("q%d (%d partitions, plan %s): %s\n%s", i+1, tr.Partitions, tr.Plan, d, q)
				}
			})
		}
		t.Logf("%s sf=%g, at most %d partitions: %d of %d queries ran on more than one partition; plans %v",
			strings.TrimSuffix(queries, "_queries"), *tpcSF, n, split, len(qs), kinds)
	}
}

// TestTPCHMatchesDuckDB: the 22 TPC-H queries, as the bundled tpch
// extension ships them, partitioned, give DuckDB's answer over the whole
// input.
func TestTPCHMatchesDuckDB(t *testing.T) { runTPC(t, "dbgen", "tpch_queries", []int{1, 2, 7}) }

// TestTPCDSMatchesDuckDB: the same for the 99 TPC-DS queries.
func TestTPCDSMatchesDuckDB(t *testing.T) { runTPC(t, "dsdgen", "tpcds_queries", []int{1, 4}) }

// TestTopNDefaultPartitions: without partition settings, a top-N (ORDER BY
// ... LIMIT, no aggregation) runs as one partition per engine — DuckDB's
// own top-N on every core, pruning row groups with its running threshold —
// and still gives DuckDB's answer; with explicit settings it splits.
func TestTopNDefaultPartitions(t *testing.T) {
	dir := t.TempDir()
	fixture(t, dir, false)
	eng, err := engine.New(engine.Options{Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	q := "SELECT event_id, amount FROM events ORDER BY amount DESC, event_id LIMIT 7"
	want := reference(t, dir, q, false)
	for _, tc := range []struct {
		o    partition.Options
		want int
	}{{partition.Options{}, 1}, {partition.Options{TargetRows: 20000}, 5}} {
		out := filepath.Join(t.TempDir(), "out")
		res, err := runQuery(t, eng, dir, q, out, tc.o, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Tasks[0].Partitions; got != tc.want && !(tc.want > 1 && got > 1) {
			t.Errorf("options %+v: %d partitions, want %d", tc.o, got, tc.want)
		}
		if d := sameRows(readOutput(t, out), want, true); d != "" {
			t.Fatal(d)
		}
	}
}
