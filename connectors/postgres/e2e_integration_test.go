package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"testing"

	goduckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/liminal-data/liminal/connectors"
	_ "github.com/liminal-data/liminal/connectors/file"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/coordinator/worker"
	"github.com/liminal-data/liminal/engine"
	"github.com/liminal-data/liminal/partition"
)

// The end-to-end tests run tasks through the real coordinator, worker and
// engine, and compare with one DuckDB over the same rows.

func newEngine(t *testing.T) *engine.Engine {
	t.Helper()
	eng, err := engine.New(engine.Options{Slots: 2, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func runTask(t *testing.T, eng *engine.Engine, runID string, task *coordinator.Task) *coordinator.RunResult {
	t.Helper()
	co := coordinator.New(worker.New(eng), coordinator.Options{})
	res := co.Run(context.Background(), runID, "", []*coordinator.Task{task})
	if res.Status != coordinator.StatusSucceeded {
		t.Fatalf("run %s: %s: %s", runID, res.Status, res.Error)
	}
	return res
}

// duck is a scratch DuckDB for reference results.
func duck(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// loadArrow copies every row of src into a DuckDB table name.
func loadArrow(t *testing.T, db *sql.DB, name string, src connectors.ArrowSource) {
	t.Helper()
	ctx := context.Background()
	splits, err := src.Splits(ctx, partition.Options{By: partition.None})
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Read(ctx, splits[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var release func()
	err = conn.Raw(func(dc any) error {
		a, err := goduckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		// DuckDB may never release the exported stream: the reader is
		// released here, once, whatever DuckDB does.
		release, err = a.RegisterView(noRetain{r}, name+"_view")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s_view", name, name)); err != nil {
		t.Fatal(err)
	}
}

// noRetain hides Retain and Release from DuckDB's stream export.
type noRetain struct{ array.RecordReader }

func (noRetain) Retain()  {}
func (noRetain) Release() {}

func count(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// sameBag fails unless queries a and b give the same multiset of rows.
// Each query is wrapped as a subquery before it meets EXCEPT ALL: set
// operators bind left to right at one level, so a query that is itself a
// UNION ALL, spliced in bare, would be cut in two ("x EXCEPT ALL b1 UNION
// ALL b2" is "(x EXCEPT ALL b1) UNION ALL b2").
func sameBag(t *testing.T, db *sql.DB, a, b string) {
	t.Helper()
	minus := func(x, y string) string {
		return fmt.Sprintf("SELECT * FROM (%s) EXCEPT ALL SELECT * FROM (%s)", x, y)
	}
	na := count(t, db, "SELECT count(*) FROM ("+a+")")
	nb := count(t, db, "SELECT count(*) FROM ("+b+")")
	diff := count(t, db, fmt.Sprintf("SELECT count(*) FROM ((%s) UNION ALL (%s))", minus(a, b), minus(b, a)))
	if na != nb || diff != 0 || na == 0 {
		for _, side := range []struct{ name, q string }{{"a", minus(a, b)}, {"b", minus(b, a)}} {
			rows, err := db.Query("SELECT * FROM (" + side.q + ") ORDER BY 1 LIMIT 2")
			if err != nil {
				t.Logf("only in %s: %v", side.name, err)
				continue
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				v := make([]any, len(cols))
				p := make([]any, len(cols))
				for i := range v {
					p[i] = &v[i]
				}
				_ = rows.Scan(p...)
				t.Logf("only in %s: %v", side.name, v)
			}
			rows.Close()
		}
		t.Fatalf("%d rows vs %d rows, %d differ\n a: %s\n b: %s", na, nb, diff, a, b)
	}
}

func TestPostgresToParquetIntegration(t *testing.T) {
	schema := newSchema(t)
	table := events(t, schema, 20000)
	ctx := context.Background()
	eng := newEngine(t)
	db := duck(t)
	ref, err := newSource(connectors.SourceConfig{URI: tableURI(schema, table), Secret: pgPassword})
	if err != nil {
		t.Fatal(err)
	}
	loadArrow(t, db, "events", ref)
	// Every query reads every column of events: see
	// TestEngineArrowProjectionIntegration for why.
	queries := map[string]string{
		"rows": "SELECT id, grp, d, ts, tstz, amount, label FROM events WHERE grp IS NULL OR grp < 50",
		"aggregate": `SELECT grp, count(*) AS n, sum(amount) AS total, min(d) AS first_d, max(ts) AS last_ts,
			max(tstz) AS last_tstz, max(id) AS max_id, min(label) AS first_label FROM events GROUP BY grp`,
		"distinct": `SELECT DISTINCT d, grp, id % 3 AS m, ts IS NULL AS nts, tstz IS NULL AS ntz, amount IS NULL AS na,
			length(label) AS ll FROM events`,
	}
	for name, q := range queries {
		for _, opts := range []map[string]string{{"partition_column": "id"}, {"partition_column": "d"}, {}} {
			t.Run(fmt.Sprintf("%s/%v", name, opts), func(t *testing.T) {
				src, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: "events", URI: tableURI(schema, table), Secret: pgPassword, Options: opts})
				if err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(t.TempDir(), "out")
				sink, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: "out", URI: out, Format: "parquet", Mode: connectors.ModeOverwrite})
				if err != nil {
					t.Fatal(err)
				}
				task := &coordinator.Task{Name: name, Query: q, Sources: map[string]connectors.Source{"events": src}, Sink: sink,
					Partition: partition.Options{TargetRows: 3000}, Driving: "events"}
				res := runTask(t, eng, "run-e2e", task)
				if res.Tasks[0].Partitions < 2 {
					t.Errorf("%d partitions, want several", res.Tasks[0].Partitions)
				}
				sameBag(t, db, "SELECT * FROM read_parquet('"+out+"/*.parquet')", q)
			})
		}
	}
}

func TestParquetToPostgresIntegration(t *testing.T) {
	schema := newSchema(t)
	ctx := context.Background()
	eng := newEngine(t)
	db := duck(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if _, err := db.Exec(fmt.Sprintf(`COPY (SELECT i AS id, 'name ' || i AS name,
		CASE WHEN i %% 7 = 0 THEN NULL ELSE i * 0.5 END AS score,
		CAST(i %% 1000 AS DECIMAL(10,2)) / 7 AS price,
		DATE '2024-01-01' + CAST(i %% 300 AS INTEGER) AS d,
		TIMESTAMP '2024-01-01' + to_seconds(i * 37) AS ts,
		i %% 2 = 0 AS even
		FROM range(0, 30000) r(i)) TO '%s' (FORMAT parquet, PER_THREAD_OUTPUT true, ROW_GROUP_SIZE 4096)`, in)); err != nil {
		t.Fatal(err)
	}
	parquet := "SELECT * FROM read_parquet('" + in + "/*.parquet')"
	run := func(t *testing.T, target, runID string, mode connectors.Mode, keys []string, q string) *coordinator.RunResult {
		src, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: "input", URI: in})
		if err != nil {
			t.Fatal(err)
		}
		sink, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: "pg", URI: tableURI(schema, target), Secret: pgPassword, Mode: mode, KeyColumns: keys})
		if err != nil {
			t.Fatal(err)
		}
		task := &coordinator.Task{Name: "load", Query: q, Sources: map[string]connectors.Source{"input": src}, Sink: sink,
			Partition: partition.Options{TargetRows: 4096}, Driving: "input"}
		return runTask(t, eng, runID, task)
	}
	readBack := func(t *testing.T, target, name string) {
		s, err := newSource(connectors.SourceConfig{URI: tableURI(schema, target), Secret: pgPassword})
		if err != nil {
			t.Fatal(err)
		}
		loadArrow(t, db, name, s)
	}
	t.Run("append and re-run", func(t *testing.T) {
		res := run(t, "loaded", "run-p1", connectors.ModeAppend, nil, "SELECT * FROM input")
		if res.Tasks[0].Partitions < 2 {
			t.Errorf("%d partitions", res.Tasks[0].Partitions)
		}
		again := run(t, "loaded", "run-p1", connectors.ModeAppend, nil, "SELECT * FROM input")
		if !again.Tasks[0].Outputs[0].AlreadyCommitted {
			t.Errorf("re-run with the same run id: %+v", again.Tasks[0].Outputs[0])
		}
		readBack(t, "loaded", "loaded1")
		sameBag(t, db, "SELECT * FROM loaded1", parquet)
	})
	t.Run("upsert", func(t *testing.T) {
		run(t, "keyed", "run-u1", connectors.ModeUpsert, []string{"id"}, "SELECT * FROM input WHERE id < 20000")
		run(t, "keyed", "run-u2", connectors.ModeUpsert, []string{"id"}, "SELECT id, upper(name) AS name, score, price, d, ts, even FROM input WHERE id >= 10000")
		readBack(t, "keyed", "keyed1")
		sameBag(t, db, "SELECT * FROM keyed1",
			"SELECT * FROM read_parquet('"+in+"/*.parquet') WHERE id < 10000 UNION ALL SELECT id, upper(name), score, price, d, ts, even FROM read_parquet('"+in+"/*.parquet') WHERE id >= 10000")
	})
	t.Run("overwrite", func(t *testing.T) {
		run(t, "replaced", "run-o1", connectors.ModeOverwrite, nil, "SELECT * FROM input")
		run(t, "replaced", "run-o2", connectors.ModeOverwrite, nil, "SELECT * FROM input WHERE even")
		readBack(t, "replaced", "replaced1")
		sameBag(t, db, "SELECT * FROM replaced1", parquet+" WHERE even")
	})
}

// TestEngineArrowProjectionIntegration shows an engine bug found by these
// tests: when a query reads only some columns of a Go-side Arrow source,
// DuckDB pushes the projection into the scan of the registered stream,
// which does not apply it, and the query reads the wrong columns (here
// count(DISTINCT d) over ids, dates of 1970 and 4757) — a silently wrong
// answer. The same query reading every column is right. The engine now
// keeps every column in the scan (engine.TestArrowProjection).
func TestEngineArrowProjectionIntegration(t *testing.T) {
	schema := newSchema(t)
	table := events(t, schema, 5000)
	ctx := context.Background()
	eng := newEngine(t)
	db := duck(t)
	src, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: "events", URI: tableURI(schema, table), Secret: pgPassword})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	sink, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: "out", URI: out, Format: "parquet", Mode: connectors.ModeOverwrite})
	if err != nil {
		t.Fatal(err)
	}
	task := &coordinator.Task{Name: "x", Query: "SELECT count(DISTINCT d) AS nd, min(d) AS mind FROM events",
		Sources: map[string]connectors.Source{"events": src}, Sink: sink, Partition: partition.Options{By: partition.None}, Driving: "events"}
	runTask(t, eng, "run-proj", task)
	var nd int64
	var mind string
	if err := db.QueryRow("SELECT nd, CAST(mind AS VARCHAR) FROM read_parquet('"+out+"/*.parquet')").Scan(&nd, &mind); err != nil {
		t.Fatal(err)
	}
	if nd != 400 || mind != "2024-01-01" { // i = 400 gives 2024-01-01
		t.Fatalf("count(DISTINCT d) = %d, min(d) = %s; want 400, 2024-01-01", nd, mind)
	}
}
