package file_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/liminal-data/liminal/connectors"
	_ "github.com/liminal-data/liminal/connectors/file"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/coordinator/worker"
	"github.com/liminal-data/liminal/engine"
	"github.com/liminal-data/liminal/partition"
)

// TestHivePruningEndToEnd runs filtered queries over the pyspark fixture
// through the coordinator, the worker and the engine into a Parquet sink,
// with the file of a pruned partition corrupt: the runs succeed and give
// DuckDB's answer over the intact files, so the corrupt file was never
// opened. An unfiltered run fails on it.
func TestHivePruningEndToEnd(t *testing.T) {
	src, _ := filepath.Abs(filepath.Join("testdata", "hive", "events"))
	dir := filepath.Join(t.TempDir(), "events")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	bad, _ := filepath.Glob(filepath.Join(dir, "dt=2024-01-03", "region=US", "*.parquet"))
	if len(bad) != 1 {
		t.Fatal(bad)
	}
	if err := os.WriteFile(bad[0], []byte("corrupt"), 0o644); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Slots: 2, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	run := func(q string) (*coordinator.RunResult, string) {
		ev, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: "events", URI: dir})
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out")
		sink, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: "out", URI: out, Mode: connectors.ModeOverwrite})
		if err != nil {
			t.Fatal(err)
		}
		task := &coordinator.Task{Name: "q", Query: q, Sources: map[string]connectors.Source{"events": ev}, Sink: sink,
			Partition: partition.Options{TargetRows: 10}, Driving: "events"}
		return coordinator.New(worker.New(eng), coordinator.Options{}).Run(ctx, "run-1", "", []*coordinator.Task{task}), out
	}
	ref := func(q string) int64 {
		db, _ := sql.Open("duckdb", "")
		defer db.Close()
		var n int64
		// DuckDB over the intact fixture, NULL regions as NULL.
		if err := db.QueryRow("SELECT count(*) FROM (" + q + ") q").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct{ q, where string }{
		{"SELECT id, name, amount, dt, region FROM events WHERE dt < DATE '2024-01-03'", "dt < DATE '2024-01-03'"},
		{"SELECT region, dt, count(*) AS n, sum(amount) AS total FROM events WHERE region IS NULL OR region <> 'US' GROUP BY region, dt", "region IS NULL OR region <> 'US'"},
	} {
		res, out := run(tc.q)
		if res.Status != coordinator.StatusSucceeded {
			t.Fatalf("%s: %s", tc.q, res.Error)
		}
		if res.Tasks[0].Partitions < 2 {
			t.Errorf("%d partitions", res.Tasks[0].Partitions)
		}
		want := ref("SELECT * FROM (SELECT * REPLACE (NULLIF(region, '__HIVE_DEFAULT_PARTITION__') AS region) FROM read_parquet('" + src + "/*/*/*.parquet', hive_partitioning=true)) WHERE " + tc.where)
		if tc.q[7:13] == "region" {
			want = ref("SELECT DISTINCT region, dt FROM (SELECT * REPLACE (NULLIF(region, '__HIVE_DEFAULT_PARTITION__') AS region) FROM read_parquet('" + src + "/*/*/*.parquet', hive_partitioning=true)) WHERE " + tc.where)
		}
		if got := ref("SELECT * FROM read_parquet('" + out + "/*.parquet')"); got != want {
			t.Fatalf("%s: %d rows, want %d", tc.q, got, want)
		}
	}
	if res, _ := run("SELECT count(*) AS n FROM events"); res.Status == coordinator.StatusSucceeded {
		t.Fatal("a run that needs the corrupt file succeeded")
	}
}
