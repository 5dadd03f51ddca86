package file

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
)

// stageRows writes an attempt of split id with rows rows through DuckDB's
// COPY, as the executor does, and returns its manifest.
func stageRows(t *testing.T, s *Sink, run connectors.Run, id string, lo, hi int) connectors.Manifest {
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
	if err := db.QueryRow(fmt.Sprintf("COPY (SELECT i AS x, i %% 3 AS k FROM range(%d, %d) r(i)) TO %s", lo, hi, target.CopyTo())).Scan(&n); err != nil {
		t.Fatal(err)
	}
	m, err := target.Close(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func openSink(t *testing.T, uri string, mode connectors.Mode, partitionBy ...string) *Sink {
	t.Helper()
	s, err := OpenSink(context.Background(), connectors.SinkConfig{Name: "out", URI: uri, Mode: mode, PartitionBy: partitionBy})
	if err != nil {
		t.Fatal(err)
	}
	return s.(*Sink)
}

// listing is the visible content of a directory: relative paths, sorted.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func count(t *testing.T, glob string) int64 {
	t.Helper()
	db, _ := sql.Open("duckdb", "")
	defer db.Close()
	var n int64
	if err := db.QueryRow("SELECT count(*) FROM read_parquet('" + glob + "')").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func commitRun(t *testing.T, s *Sink, id string, lo, hi int) connectors.Committed {
	t.Helper()
	ctx := context.Background()
	run := connectors.Run{ID: id}
	if err := s.Prepare(ctx, run); err != nil {
		t.Fatal(err)
	}
	mid := (lo + hi) / 2
	ms := []connectors.Manifest{stageRows(t, s, run, "p0", lo, mid), stageRows(t, s, run, "p1", mid, hi)}
	c, err := s.Commit(ctx, run, ms)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSinkModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	s := openSink(t, dir, connectors.ModeError)
	c := commitRun(t, s, "r1", 0, 100)
	if c.Rows != 100 || len(c.Files) != 2 {
		t.Fatalf("committed %+v", c)
	}
	want := []string{"_SUCCESS", "part-p0-r1.parquet", "part-p1-r1.parquet"}
	if got := listing(t, dir); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listing %v, want %v", got, want)
	}
	// mode error refuses existing output before any work.
	if err := openSink(t, dir, connectors.ModeError).Prepare(context.Background(), connectors.Run{ID: "r2"}); err == nil || !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("mode error on existing output: %v", err)
	}
	// append adds; the same run id again adds nothing.
	a := openSink(t, dir, connectors.ModeAppend)
	commitRun(t, a, "r2", 100, 150)
	if again := commitRun(t, a, "r2", 100, 150); !again.AlreadyCommitted {
		t.Fatal("re-run of an appended run id was not recognised")
	}
	if n := count(t, dir+"/*.parquet"); n != 150 {
		t.Fatalf("%d rows after append, want 150", n)
	}
	succ, err := ReadSuccess(dir)
	if err != nil || len(succ.Files) != 4 || succ.Rows != 150 || fmt.Sprint(succ.Runs) != "[r1 r2]" {
		t.Fatalf("manifest %+v %v", succ, err)
	}
	// overwrite replaces everything.
	commitRun(t, openSink(t, dir, connectors.ModeOverwrite), "r3", 0, 10)
	if got := listing(t, dir); fmt.Sprint(got) != "[_SUCCESS part-p0-r3.parquet part-p1-r3.parquet]" {
		t.Fatalf("after overwrite: %v", got)
	}
	if _, err := os.Stat(s.stagingRoot()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staging left behind: %v", err)
	}
}

func TestSinkAbortLeavesOutput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	commitRun(t, openSink(t, dir, connectors.ModeError), "r1", 0, 100)
	before := listing(t, dir)
	s := openSink(t, dir, connectors.ModeOverwrite)
	run := connectors.Run{ID: "r2"}
	if err := s.Prepare(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	stageRows(t, s, run, "p0", 0, 5)
	if err := s.Abort(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	if got := listing(t, dir); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("abort changed the output: %v, was %v", got, before)
	}
	if n := count(t, dir+"/*.parquet"); n != 100 {
		t.Fatalf("%d rows, want 100", n)
	}
}

// TestSinkCrashDuringCommit: a commit that dies after moving some files is
// finished by the next Prepare on the sink (roll forward), whatever point
// it died at.
func TestSinkCrashDuringCommit(t *testing.T) {
	for crashAt := range 3 {
		t.Run(fmt.Sprint(crashAt), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			commitRun(t, openSink(t, dir, connectors.ModeError), "old", 0, 100)
			s := openSink(t, dir, connectors.ModeOverwrite)
			run := connectors.Run{ID: "new"}
			if err := s.Prepare(context.Background(), run); err != nil {
				t.Fatal(err)
			}
			ms := []connectors.Manifest{stageRows(t, s, run, "p0", 0, 10), stageRows(t, s, run, "p1", 10, 30)}
			testHookMove = func(i int) error {
				if i == crashAt {
					return errors.New("crash")
				}
				return nil
			}
			_, err := s.Commit(context.Background(), run, ms)
			testHookMove = nil
			if crashAt < 2 && err == nil {
				t.Fatal("commit did not fail at the hook")
			}
			s.release(run) // the crashed process's lock goes with it
			// The next run on the sink finishes the interrupted commit first.
			next := openSink(t, dir, connectors.ModeAppend)
			if err := next.Prepare(context.Background(), connectors.Run{ID: "later"}); err != nil {
				t.Fatal(err)
			}
			if err := next.Abort(context.Background(), connectors.Run{ID: "later"}); err != nil {
				t.Fatal(err)
			}
			if got := listing(t, dir); fmt.Sprint(got) != "[_SUCCESS part-p0-new.parquet part-p1-new.parquet]" {
				t.Fatalf("after recovery: %v", got)
			}
			if n := count(t, dir+"/*.parquet"); n != 30 {
				t.Fatalf("%d rows, want 30", n)
			}
		})
	}
}

func TestSinkSweepsCrashedStaging(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	s := openSink(t, dir, connectors.ModeOverwrite)
	dead := connectors.Run{ID: "dead"}
	if err := s.Prepare(context.Background(), dead); err != nil {
		t.Fatal(err)
	}
	stageRows(t, s, dead, "p0", 0, 10)
	s.release(dead) // the process died: its lock is gone, its staging stays
	live := openSink(t, dir, connectors.ModeOverwrite)
	liveRun := connectors.Run{ID: "live"}
	other := connectors.Run{ID: "other"}
	if err := live.Prepare(context.Background(), liveRun); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.runDir(dead)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("crashed staging not swept: %v", err)
	}
	// A live run's staging is never swept by another run.
	if err := openSink(t, dir, connectors.ModeOverwrite).Prepare(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(live.runDir(liveRun)); err != nil {
		t.Fatalf("live staging swept: %v", err)
	}
}

func TestSinkPartitionBy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	s := openSink(t, dir, connectors.ModeError, "k")
	commitRun(t, s, "r1", 0, 90)
	got := listing(t, dir)
	want := []string{"_SUCCESS", "k=0/part-p0-r1.parquet", "k=0/part-p1-r1.parquet", "k=1/part-p0-r1.parquet",
		"k=1/part-p1-r1.parquet", "k=2/part-p0-r1.parquet", "k=2/part-p1-r1.parquet"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listing %v, want %v", got, want)
	}
	if n := count(t, dir+"/*/*.parquet"); n != 90 {
		t.Fatalf("%d rows", n)
	}
}

func TestSinkSingleFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.parquet")
	s := openSink(t, path, connectors.ModeOverwrite)
	run := connectors.Run{ID: "r1"}
	if err := s.Prepare(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	m := stageRows(t, s, run, "final", 0, 42)
	if _, err := s.Commit(context.Background(), run, []connectors.Manifest{m}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, path); n != 42 {
		t.Fatalf("%d rows", n)
	}
	if _, err := OpenSink(context.Background(), connectors.SinkConfig{URI: path, Mode: connectors.ModeAppend}); err == nil {
		t.Fatal("append to a single file accepted")
	}
}

func TestSinkConfigErrors(t *testing.T) {
	tests := map[string]connectors.SinkConfig{
		"bad format":       {URI: "out/", Format: "xlsx"},
		"ext mismatch":     {URI: "out.csv", Format: "parquet"},
		"csv compression":  {URI: "out.csv", Compression: "zstd"},
		"bad compression":  {URI: "out/", Compression: "brotli9"},
		"single partition": {URI: "out.parquet", PartitionBy: []string{"k"}},
	}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := OpenSink(context.Background(), c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestSinkUnwritable(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores permissions: make the parent a file instead.
		parent := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(parent, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		s := openSink(t, filepath.Join(parent, "out"), connectors.ModeError)
		if err := s.Prepare(context.Background(), connectors.Run{ID: "r"}); err == nil {
			t.Fatal("unwritable sink accepted")
		}
		return
	}
	ro := t.TempDir()
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	s := openSink(t, filepath.Join(ro, "out"), connectors.ModeError)
	if err := s.Prepare(context.Background(), connectors.Run{ID: "r"}); err == nil {
		t.Fatal("unwritable sink accepted")
	}
}
