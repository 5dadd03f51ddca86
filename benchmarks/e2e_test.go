package benchmarks

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/liminal-data/liminal/connectors"
	_ "github.com/liminal-data/liminal/connectors/file"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/coordinator/worker"
	"github.com/liminal-data/liminal/engine"
	"github.com/liminal-data/liminal/internal/datagen"
	"github.com/liminal-data/liminal/partition"
)

// Jobs are the queries every comparison runs; compare.sh runs the same two.
var jobs = []struct{ name, query string }{
	{"filter", `SELECT event_id, customer_id, ts, amount, country FROM events WHERE event_type IN ('purchase','refund') AND amount <> 0`},
	{"agg", `SELECT country, event_type, dt, count(*) AS n, sum(amount) AS revenue, avg(session_ms) AS avg_session, min(ts) AS first_ts, max(ts) AS last_ts FROM events GROUP BY country, event_type, dt`},
}

const defaultRows = 1_000_000

// BenchmarkETL runs each job through Liminal's whole pipeline (open the
// source, plan, run the partitions, commit) and through one DuckDB with
// COPY (query) TO, on the same files with the same number of threads.
func BenchmarkETL(b *testing.B) {
	data := benchData(b)
	ctx := context.Background()
	events := filepath.Join(data, "events")
	src, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: "events", URI: events})
	if err != nil {
		b.Fatal(err)
	}
	whole, err := src.Splits(ctx, partition.Options{By: partition.None})
	if err != nil {
		b.Fatal(err)
	}
	var rows, bytes int64
	for _, s := range whole {
		rows += s.Rows
		bytes += s.Bytes
	}
	ref := newDuck(b, data)
	defer ref.Close()
	for _, j := range jobs {
		b.Run("job="+j.name, func(b *testing.B) {
			var want int64
			if err := ref.QueryRowContext(ctx, "SELECT count(*) FROM ("+j.query+")").Scan(&want); err != nil {
				b.Fatal(err)
			}
			b.Run("engine=liminal", func(b *testing.B) {
				benchLiminal(b, events, j.query, rows, bytes, want)
			})
			b.Run("engine=duckdb", func(b *testing.B) {
				benchDuckDB(b, ref, j.query, rows, bytes, want)
			})
		})
	}
}

func benchLiminal(b *testing.B, events, query string, rows, bytes, want int64) {
	ctx := context.Background()
	o := engine.Options{Slots: envInt(b, "LIMINAL_BENCH_WORKERS", runtime.NumCPU())}
	eng, err := engine.New(o)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	co := coordinator.New(worker.New(eng), coordinator.Options{})
	out := filepath.Join(b.TempDir(), "out")
	part := partition.Options{TargetRows: int64(envInt(b, "LIMINAL_BENCH_TARGET_ROWS", 0))}
	b.SetBytes(bytes)
	b.ReportAllocs()
	n := 0
	cpu := processCPU()
	for b.Loop() {
		n++
		// Opening the source (reading every footer) is part of a run.
		src, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: "events", URI: events})
		if err != nil {
			b.Fatal(err)
		}
		sink, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: "out", URI: out, Mode: connectors.ModeOverwrite})
		if err != nil {
			b.Fatal(err)
		}
		task := &coordinator.Task{Name: "q", Query: query, Sources: map[string]connectors.Source{"events": src},
			Sink: sink, Partition: part, Driving: "events"}
		res := co.Run(ctx, fmt.Sprintf("run-%d", n), "", []*coordinator.Task{task})
		if res.Status != coordinator.StatusSucceeded {
			b.Fatalf("run %s: %s", res.Status, res.Error)
		}
		if got := res.Tasks[0].RowsOut; got != want {
			b.Fatalf("liminal wrote %d rows, DuckDB's count is %d", got, want)
		}
		if n == 1 {
			t := res.Tasks[0]
			b.Logf("plan %s, %d partitions, %d slots", t.Plan, t.Partitions, eng.Slots())
		}
	}
	report(b, n, rows, processCPU()-cpu)
}

func benchDuckDB(b *testing.B, db *sql.DB, query string, rows, bytes, want int64) {
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	out := filepath.Join(b.TempDir(), "out.parquet")
	copyTo := "COPY (" + query + ") TO '" + out + "' (FORMAT parquet)"
	b.SetBytes(bytes)
	b.ReportAllocs()
	n := 0
	cpu := processCPU()
	for b.Loop() {
		n++
		var got int64
		if err := conn.QueryRowContext(ctx, copyTo).Scan(&got); err != nil {
			b.Fatal(err)
		}
		if got != want {
			b.Fatalf("COPY wrote %d rows, count is %d", got, want)
		}
	}
	report(b, n, rows, processCPU()-cpu)
}

// report adds rows/s (input rows) and cpu-s/op: the process's CPU time
// (user + system, DuckDB's threads included) per run, which a busy machine
// distorts less than wall time.
func report(b *testing.B, n int, rows int64, cpu time.Duration) {
	b.ReportMetric(float64(rows)*float64(n)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(cpu.Seconds()/float64(n), "cpu-s/op")
}

// newDuck opens one in-memory DuckDB with every core and the view events
// over the same files Liminal reads.
func newDuck(b *testing.B, data string) *sql.DB {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		b.Fatal(err)
	}
	// SET threads is per database; one connection keeps the session simple.
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		fmt.Sprintf("SET threads = %d", runtime.NumCPU()),
		"SET enable_progress_bar = false",
		"CREATE VIEW events AS SELECT * FROM read_parquet('" + filepath.Join(data, "events", "*.parquet") + "')",
	} {
		if _, err := db.Exec(q); err != nil {
			db.Close()
			b.Fatalf("%s: %v", q, err)
		}
	}
	return db
}

// benchData returns the dataset directory: LIMINAL_BENCH_DATA, or a cache
// directory generated on first use. Generation is deterministic, so a
// directory whose completion marker names the same rows and files is reused
// as it is; compare.sh writes and reads the same marker.
func benchData(b *testing.B) string {
	b.Helper()
	if d := os.Getenv("LIMINAL_BENCH_DATA"); d != "" {
		return d
	}
	rows := int64(envInt(b, "LIMINAL_BENCH_ROWS", defaultRows))
	files := datagen.DefaultFiles
	if rows >= 10_000_000 {
		files = 16 // as compare.sh generates its 10M rows
	}
	home, err := os.UserHomeDir()
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(home, ".cache", "liminal", "bench-"+rowsLabel(rows))
	marker, want := filepath.Join(dir, ".complete"), fmt.Sprintf("rows=%d files=%d\n", rows, files)
	if got, err := os.ReadFile(marker); err == nil && string(got) == want {
		return dir
	}
	if testing.Short() {
		b.Skipf("-short: not generating %d rows into %s (set LIMINAL_BENCH_DATA or run without -short)", rows, dir)
	}
	b.Logf("generating %d rows in %d files into %s", rows, files, dir)
	_ = os.Remove(marker)
	if _, err := datagen.Generate(context.Background(), datagen.Options{Dir: dir, Rows: rows, Files: files}); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(marker, []byte(want), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// rowsLabel names a row count as compare.sh does: 1M, 10M, else digits.
func rowsLabel(n int64) string {
	if n >= 1_000_000 && n%1_000_000 == 0 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return strconv.FormatInt(n, 10)
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}
