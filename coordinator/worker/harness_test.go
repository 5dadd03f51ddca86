package worker_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
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

// fixture writes a small events/customers dataset with several files, many
// row groups and NULLs, so that partition counts 1, 3 and 17 are reachable.
func fixture(t testing.TB, dir string, csv bool) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, d := range []string{"events", "customers"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	events := func(lo, hi int) string {
		return fmt.Sprintf(`SELECT i AS event_id,
			CAST(1 + (i * 7919) %% 500 AS INTEGER) AS customer_id,
			TIMESTAMP '2024-01-01' + to_seconds(CAST((i * 104729) %% (86400 * 60) AS BIGINT)) AS ts,
			CAST(TIMESTAMP '2024-01-01' + to_seconds(CAST((i * 104729) %% (86400 * 60) AS BIGINT)) AS DATE) AS dt,
			['view','click','add_to_cart','purchase','refund'][1 + (i * 31) %% 5] AS event_type,
			['US','IN','GB','DE','FR','IL','BR'][1 + (i * 13) %% 7] AS country,
			CASE WHEN i %% 17 = 0 THEN NULL ELSE ['ios','android','web'][1 + i %% 3] END AS device,
			CASE WHEN (i * 31) %% 5 = 3 THEN round(((i * 2654435761) %% 100000) / 137.0, 2)
			     WHEN (i * 31) %% 5 = 4 THEN -round(((i * 40503) %% 10000) / 97.0, 2) ELSE 0 END AS amount,
			CASE WHEN (i * 31) %% 5 < 2 THEN NULL ELSE CAST(1 + i %% 4 AS INTEGER) END AS quantity,
			CAST((i * 48271) %% 600000 AS BIGINT) AS session_ms,
			CASE WHEN i %% 17 = 0 THEN NULL ELSE i %% 3 < 2 END AS is_mobile,
			CASE WHEN i %% 101 = 0 THEN NULL ELSE CAST(((i * 69069) %% 100000) / 100.0 AS DECIMAL(10,2)) END AS price
			FROM range(%d, %d) r(i)`, lo, hi)
	}
	files := []int{0, 20000, 45000, 60000, 61000, 80000, 100000}
	if csv {
		// CSV checks dialect and type consistency across partitions, not
		// volume: a tenth of the rows keeps the corpus fast.
		for i := range files {
			files[i] /= 10
		}
	}
	for f := 0; f+1 < len(files); f++ {
		q := events(files[f], files[f+1])
		var target string
		if csv {
			target = fmt.Sprintf("'%s' (FORMAT csv, HEADER true)", filepath.Join(dir, "events", fmt.Sprintf("part-%d.csv", f)))
		} else {
			target = fmt.Sprintf("'%s' (FORMAT parquet, ROW_GROUP_SIZE 2048)", filepath.Join(dir, "events", fmt.Sprintf("part-%d.parquet", f)))
		}
		if _, err := db.Exec("COPY (" + q + ") TO " + target); err != nil {
			t.Fatal(err)
		}
	}
	cust := `SELECT CAST(i AS INTEGER) AS customer_id, 'customer ' || i AS name,
		['consumer','smb','enterprise'][1 + i % 3] AS segment, DATE '2020-01-01' + CAST(i AS INTEGER) AS signup_date,
		['US','IN','GB','DE','FR','IL','BR'][1 + (i * 3) % 7] AS country FROM range(1, 451) r(i)`
	if _, err := db.Exec("COPY (" + cust + ") TO '" + filepath.Join(dir, "customers", "customers.parquet") + "' (FORMAT parquet)"); err != nil {
		t.Fatal(err)
	}
}

// reference runs q once over the whole input in one DuckDB.
func reference(t testing.TB, dir, q string, csv bool) [][]any {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	scan := "read_parquet('" + dir + "/events/*.parquet')"
	if csv {
		scan = "read_csv('" + dir + "/events/*.csv')"
	}
	for _, s := range []string{
		"CREATE VIEW events AS SELECT * FROM " + scan,
		"CREATE VIEW customers AS SELECT * FROM read_parquet('" + dir + "/customers/*.parquet')",
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	return queryRows(t, db, q)
}

func queryRows(t testing.TB, db *sql.DB, q string) [][]any {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		v := make([]any, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rows.Scan(p...); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readOutput reads a committed directory sink in file order.
func readOutput(t testing.TB, dir string) [][]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if len(files) == 0 {
		return nil
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sort.Strings(files)
	return queryRows(t, db, "SELECT * FROM read_parquet(['"+strings.Join(files, "','")+"'])")
}

func sameRows(a, b [][]any, ordered bool) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d rows, want %d", len(a), len(b))
	}
	if !ordered {
		a, b = sortedRows(a), sortedRows(b)
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return fmt.Sprintf("row %d: %d columns, want %d", i, len(a[i]), len(b[i]))
		}
		for j := range a[i] {
			if !sameValue(a[i][j], b[i][j]) {
				return fmt.Sprintf("row %d col %d: got %v (%T), want %v (%T)", i, j, a[i][j], a[i][j], b[i][j], b[i][j])
			}
		}
	}
	return ""
}

// normRow rounds floats for sorting so that last-bit differences from a
// different summation order do not reorder rows.
func normRow(r []any) []any {
	out := make([]any, len(r))
	for i, v := range r {
		if f, ok := v.(float64); ok {
			out[i] = fmt.Sprintf("%.6g", f)
			continue
		}
		out[i] = v
	}
	return out
}

func sameValue(a, b any) bool {
	fa, aok := a.(float64)
	fb, bok := b.(float64)
	if aok && bok {
		if fa == fb || math.IsNaN(fa) && math.IsNaN(fb) {
			return true
		}
		return math.Abs(fa-fb) <= 1e-9*math.Max(1, math.Max(math.Abs(fa), math.Abs(fb)))
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// runQuery runs q through the coordinator and the worker into a new
// directory sink and returns the task result.
func runQuery(t testing.TB, eng *engine.Engine, dir, q, out string, o partition.Options, csv bool) (*coordinator.RunResult, error) {
	t.Helper()
	ctx := context.Background()
	evURI := filepath.Join(dir, "events")
	ev, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: "events", URI: evURI})
	if err != nil {
		return nil, err
	}
	cu, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: "customers", URI: filepath.Join(dir, "customers")})
	if err != nil {
		return nil, err
	}
	sink, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: "out", URI: out, Mode: connectors.ModeOverwrite})
	if err != nil {
		return nil, err
	}
	task := &coordinator.Task{Name: "q", Query: q, Sources: map[string]connectors.Source{"events": ev, "customers": cu},
		Sink: sink, Partition: o, Driving: "events"}
	co := coordinator.New(worker.New(eng), coordinator.Options{})
	res := co.Run(ctx, "run-1", "", []*coordinator.Task{task})
	if res.Status != coordinator.StatusSucceeded {
		return res, fmt.Errorf("%s", res.Error)
	}
	return res, nil
}

// optionsFor finds partition options that give exactly n partitions.
func optionsFor(t testing.TB, dir string, n int) partition.Options {
	t.Helper()
	if n == 1 {
		return partition.Options{By: partition.None}
	}
	src, err := connectors.OpenSource(context.Background(), connectors.SourceConfig{Name: "events", URI: filepath.Join(dir, "events")})
	if err != nil {
		t.Fatal(err)
	}
	for target := int64(1000); target <= 200000; target++ {
		o := partition.Options{TargetRows: target}
		sp, err := src.Splits(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(sp) == n {
			return o
		}
	}
	t.Fatalf("no target size gives %d partitions", n)
	return partition.Options{}
}

// sortedRows sorts rows by a key computed once per row.
func sortedRows(rows [][]any) [][]any {
	type keyed struct {
		k string
		r []any
	}
	ks := make([]keyed, len(rows))
	for i, r := range rows {
		ks[i] = keyed{fmt.Sprint(normRow(r)), r}
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].k < ks[j].k })
	out := make([][]any, len(rows))
	for i, k := range ks {
		out[i] = k.r
	}
	return out
}
