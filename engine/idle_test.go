package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// slowReader is a network source slower than DuckDB: each batch comes
// after a pause.
type slowReader struct {
	array.RecordReader
	pause time.Duration
}

func (r *slowReader) Next() bool {
	time.Sleep(r.pause)
	return r.RecordReader.Next()
}

func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestWaitingForAStreamIsIdle: while a query waits for a slow Go stream,
// the process does not burn a core. DuckDB 1.1's own execute loop
// busy-spins whenever a background thread holds the query's only task (in
// about half the runs, whoever wins the race): that measured +4.5 CPU-s on
// a 5 s PostgreSQL extraction. The outputs DuckDB writes (COPY, the
// in-memory partials) go through execCount, which sleeps instead.
func TestWaitingForAStreamIsIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds of wall time")
	}
	e, err := New(Options{Slots: 1, Threads: 2, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	dir := t.TempDir()
	const runs, batchesPerRun, pause = 6, 20, 15 * time.Millisecond
	var wall, cpu time.Duration
	for i := range runs {
		r := &slowReader{RecordReader: batches(memory.DefaultAllocator, batchesPerRun*1000, 1000), pause: pause}
		out := Output{CopyTo: fmt.Sprintf("'%s' (FORMAT parquet)", filepath.Join(dir, fmt.Sprintf("out%d.parquet", i)))}
		if i%2 == 1 {
			out = Output{Memory: e.TableName("idle")}
		}
		c0, w0 := cpuTime(t), time.Now()
		res, err := e.Execute(t.Context(), Job{Tables: []Table{{Name: "t", Reader: r}}, Query: "SELECT x, s FROM t", Output: out})
		wall += time.Since(w0)
		cpu += cpuTime(t) - c0
		if err != nil {
			t.Fatal(err)
		}
		if res.Rows != batchesPerRun*1000 {
			t.Fatalf("run %d: %d rows", i, res.Rows)
		}
		if out.Memory != "" {
			if err := e.DropTables(t.Context(), out.Memory); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%d runs waiting for a slow stream: %s wall, %s CPU (%.0f%%)", runs, wall.Round(time.Millisecond),
		cpu.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds())
	// A spinning run costs about its whole wall time in CPU; an idle one
	// a few percent. One spinning run out of six would be over 15%.
	if cpu > wall*3/20 {
		t.Errorf("waiting for the stream cost %s of CPU in %s: a thread spins", cpu, wall)
	}
}

// TestCancelledThenClosed: a query started with a context that is already
// done, then the engine closed at once, many times: the interrupt the
// context triggers must never reach a closed connection (it crashed CI with
// SIGSEGV in duckdb_interrupt when it was a bare context.AfterFunc).
func TestCancelledThenClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts many engines")
	}
	for i := range 100 {
		e, err := New(Options{Slots: 1, Threads: 2, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		out := Output{Writer: &collect{}}
		if i%2 == 1 {
			out = Output{CopyTo: fmt.Sprintf("'%s' (FORMAT parquet)", filepath.Join(t.TempDir(), "o.parquet"))}
		}
		if _, err := e.Execute(ctx, Job{Tables: []Table{{Name: "t", Scan: "range(100000)"}}, Query: "SELECT * FROM t", Output: out}); err == nil {
			t.Fatal("a cancelled context ran")
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
