package file

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
)

// stageQuery stages the rows of q (columns x, k) as split id of run.
func stageQuery(t *testing.T, s *Sink, run connectors.Run, id, q string) connectors.Manifest {
	t.Helper()
	ctx := context.Background()
	target, err := s.Stage(ctx, run, partition.Split{ID: id}, 1)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow("COPY (" + q + ") TO " + target.CopyTo()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	m, err := target.Close(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// perPartition summarizes a partitioned output: k -> "rows:min..max".
func perPartition(t *testing.T, dir string) string {
	t.Helper()
	db, _ := sql.Open("duckdb", "")
	defer db.Close()
	rows, err := db.Query("SELECT k, count(*), min(x), max(x) FROM read_parquet('" + dir + "/*/*.parquet', hive_partitioning=true) GROUP BY k ORDER BY k")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k, n, lo, hi int64
		if err := rows.Scan(&k, &n, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("k=%d:%d:%d..%d", k, n, lo, hi))
	}
	return strings.Join(out, " ")
}

const (
	// k=1 and a new k=3 from one run of two splits.
	replace13a = "SELECT i AS x, 1 AS k FROM range(1000, 1010) r(i)"
	replace13b = "SELECT i AS x, 3 AS k FROM range(2000, 2005) r(i)"
)

func TestSinkOverwritePartitions(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "out")
	commitRun(t, openSink(t, dir, connectors.ModeError, "k"), "r1", 0, 90)
	const before = "k=0:30:0..87 k=1:30:1..88 k=2:30:2..89"
	if got := perPartition(t, dir); got != before {
		t.Fatalf("initial %s", got)
	}
	s := openSink(t, dir, connectors.ModeOverwritePartitions, "k")
	run := connectors.Run{ID: "r2"}
	commit := func() connectors.Committed {
		t.Helper()
		if err := s.Prepare(ctx, run); err != nil {
			t.Fatal(err)
		}
		ms := []connectors.Manifest{stageQuery(t, s, run, "p0", replace13a), stageQuery(t, s, run, "p1", replace13b)}
		c, err := s.Commit(ctx, run, ms)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := commit()
	const after = "k=0:30:0..87 k=1:10:1000..1009 k=2:30:2..89 k=3:5:2000..2004"
	if got := perPartition(t, dir); got != after {
		t.Fatalf("after overwrite_partitions: %s\nwant %s", got, after)
	}
	if c.AlreadyCommitted || c.Rows != 15 {
		t.Fatalf("committed %+v", c)
	}
	want := "[_SUCCESS k=0/part-p0-r1.parquet k=0/part-p1-r1.parquet k=1/part-p0-r2.parquet k=2/part-p0-r1.parquet k=2/part-p1-r1.parquet k=3/part-p1-r2.parquet]"
	if got := fmt.Sprint(listing(t, dir)); got != want {
		t.Fatalf("listing %s\nwant    %s", got, want)
	}
	succ, err := ReadSuccess(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range succ.Files {
		files = append(files, f.Path)
	}
	if fmt.Sprint(files) != "[k=0/part-p0-r1.parquet k=0/part-p1-r1.parquet k=1/part-p0-r2.parquet k=2/part-p0-r1.parquet k=2/part-p1-r1.parquet k=3/part-p1-r2.parquet]" ||
		fmt.Sprint(succ.Runs) != "[r1 r2]" || succ.Mode != string(connectors.ModeOverwritePartitions) {
		t.Fatalf("manifest %+v", succ)
	}
	// The same run id again changes nothing.
	if again := commit(); !again.AlreadyCommitted {
		t.Fatalf("re-run of r2 committed again: %+v", again)
	}
	if got := perPartition(t, dir); got != after {
		t.Fatalf("after the re-run: %s", got)
	}
	if got := fmt.Sprint(listing(t, dir)); got != want {
		t.Fatalf("listing after the re-run %s", got)
	}
}

// TestSinkOverwritePartitionsCrash: a commit that dies after the journal
// (partitions already moved away, files not yet published) is rolled
// forward by the next run on the sink; a failed run before the journal
// leaves the output as it was.
func TestSinkOverwritePartitionsCrash(t *testing.T) {
	ctx := context.Background()
	for crashAt := range 3 {
		t.Run(fmt.Sprint(crashAt), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			commitRun(t, openSink(t, dir, connectors.ModeError, "k"), "r1", 0, 90)
			s := openSink(t, dir, connectors.ModeOverwritePartitions, "k")
			run := connectors.Run{ID: "r3"}
			if err := s.Prepare(ctx, run); err != nil {
				t.Fatal(err)
			}
			ms := []connectors.Manifest{
				stageQuery(t, s, run, "p0", "SELECT i AS x, 0 AS k FROM range(500, 503) r(i)"),
				stageQuery(t, s, run, "p1", "SELECT i AS x, 2 AS k FROM range(600, 604) r(i)"),
			}
			testHookMove = func(i int) error {
				if i == crashAt {
					return errors.New("crash")
				}
				return nil
			}
			_, err := s.Commit(ctx, run, ms)
			testHookMove = nil
			if crashAt < 2 && err == nil {
				t.Fatal("commit did not fail at the hook")
			}
			s.release(run) // the crashed process's lock goes with it
			next := openSink(t, dir, connectors.ModeOverwritePartitions, "k")
			later := connectors.Run{ID: "later"}
			if err := next.Prepare(ctx, later); err != nil {
				t.Fatal(err)
			}
			if err := next.Abort(ctx, later); err != nil {
				t.Fatal(err)
			}
			const want = "k=0:3:500..502 k=1:30:1..88 k=2:4:600..603"
			if got := perPartition(t, dir); got != want {
				t.Fatalf("after recovery %s, want %s", got, want)
			}
			succ, err := ReadSuccess(dir)
			if err != nil || fmt.Sprint(succ.Runs) != "[r1 r3]" || len(succ.Files) != 4 {
				t.Fatalf("manifest %+v %v", succ, err)
			}
		})
	}
	// An aborted run leaves every partition as it was.
	dir := filepath.Join(t.TempDir(), "out")
	commitRun(t, openSink(t, dir, connectors.ModeError, "k"), "r1", 0, 90)
	s := openSink(t, dir, connectors.ModeOverwritePartitions, "k")
	run := connectors.Run{ID: "r4"}
	if err := s.Prepare(ctx, run); err != nil {
		t.Fatal(err)
	}
	stageQuery(t, s, run, "p0", replace13a)
	if err := s.Abort(ctx, run); err != nil {
		t.Fatal(err)
	}
	if got := perPartition(t, dir); got != "k=0:30:0..87 k=1:30:1..88 k=2:30:2..89" {
		t.Fatalf("after abort %s", got)
	}
}

func TestSinkModeErrors(t *testing.T) {
	tests := map[string]struct {
		c    connectors.SinkConfig
		want string
	}{
		"upsert":                  {connectors.SinkConfig{URI: "out/", Mode: connectors.ModeUpsert, KeyColumns: []string{"id"}}, "upsert needs a database sink"},
		"partitions without keys": {connectors.SinkConfig{URI: "out/", Mode: connectors.ModeOverwritePartitions}, "needs partition_by"},
		"partitions single file":  {connectors.SinkConfig{URI: "out.parquet", Mode: connectors.ModeOverwritePartitions, PartitionBy: []string{"k"}}, "partition_by needs a directory"},
	}
	for name, tc := range tests {
		tc.c.BaseDir = t.TempDir()
		_, err := OpenSink(context.Background(), tc.c)
		if err == nil || !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a permanent error saying %q", name, err, tc.want)
		}
	}
}
