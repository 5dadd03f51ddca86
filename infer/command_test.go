package infer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The user programs of these tests are the test binary itself: run with
// LIMINAL_COMMAND_HELPER=<mode>, TestHelperProcess speaks the protocol
// (or breaks it) the way the mode says, then exits.
const helperEnv = "LIMINAL_COMMAND_HELPER"

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process for the command model tests")
	}
	os.Exit(helperMain(mode))
}

func helperMain(mode string) int {
	stdout := bufio.NewWriterSize(os.Stdout, 1<<20)
	switch mode {
	case "hang":
		time.Sleep(time.Hour)
		return 0
	case "hangchild":
		child := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		child.Env = append(os.Environ(), helperEnv+"=hang")
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "child=%d\n", child.Process.Pid)
		time.Sleep(time.Hour)
		return 0
	case "exit3":
		fmt.Fprintln(os.Stderr, "Traceback: something went wrong")
		return 3
	case "garbage", "garbagehang":
		fmt.Fprint(os.Stderr, "I print my results\n")
		fmt.Fprint(os.Stdout, "score=0.5\n\x00\x01 and more")
		if mode == "garbagehang" {
			time.Sleep(time.Hour)
		}
		return 0
	case "empty":
		_, _ = io.Copy(io.Discard, os.Stdin)
		return 0
	case "stderrspam":
		for i := 0; i < 2000; i++ {
			fmt.Fprintf(os.Stderr, "log line %04d\n", i)
		}
		fmt.Fprint(os.Stderr, "THE END")
		return 1
	}

	rdr, err := ipc.NewReader(bufio.NewReaderSize(os.Stdin, 1<<20))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	defer rdr.Release()
	var w *ipc.Writer
	emit := func(rec arrow.RecordBatch) error {
		if w == nil {
			w = ipc.NewWriter(stdout, ipc.WithSchema(rec.Schema()))
		}
		if err := w.Write(rec); err != nil {
			return err
		}
		return stdout.Flush()
	}
	var kept []arrow.RecordBatch
	first := true
	for rdr.Next() {
		in := rdr.RecordBatch()
		var out arrow.RecordBatch
		switch mode {
		case "echo":
			in.Retain()
			out = in
		case "env":
			out = helperEnvBatch(in)
		case "wrongschema":
			out = helperScore(in, arrow.PrimitiveTypes.Float32)
		default:
			out = helperScore(in, arrow.PrimitiveTypes.Float64)
		}
		switch mode {
		case "crash":
			fmt.Fprintln(os.Stderr, "about to crash")
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Hour)
		case "slow":
			time.Sleep(300 * time.Millisecond)
		case "short":
			if first && out.NumRows() > 0 {
				s := out.NewSlice(0, out.NumRows()-1)
				out.Release()
				out = s
			}
		case "rebatch":
			for i := int64(0); i < out.NumRows(); i += 7 {
				s := out.NewSlice(i, min(i+7, out.NumRows()))
				err = emit(s)
				s.Release()
				if err != nil {
					fmt.Fprintln(os.Stderr, "helper:", err)
					return 1
				}
			}
			out.Release()
			continue
		case "slurp":
			kept = append(kept, out)
			continue
		}
		first = false
		err = emit(out)
		out.Release()
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
	}
	if err := rdr.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	for _, rec := range kept {
		if err := emit(rec); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
		rec.Release()
	}
	if mode == "extra" {
		b := array.NewFloat64Builder(memory.DefaultAllocator)
		b.AppendValues([]float64{1, 2, 3}, nil)
		col := b.NewArray()
		rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil), []arrow.Array{col}, 3)
		_ = emit(rec)
	}
	if w == nil {
		w = ipc.NewWriter(stdout, ipc.WithSchema(arrow.NewSchema([]arrow.Field{{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil)))
	}
	if err := w.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	if err := stdout.Flush(); err != nil {
		return 1
	}
	return 0
}

// helperScore is the sum of the row's float64 and int64 columns.
func helperScore(in arrow.RecordBatch, typ arrow.DataType) arrow.RecordBatch {
	n := int(in.NumRows())
	sum := make([]float64, n)
	for _, c := range in.Columns() {
		switch a := c.(type) {
		case *array.Float64:
			for i, v := range a.Float64Values() {
				sum[i] += v
			}
		case *array.Int64:
			for i, v := range a.Int64Values() {
				sum[i] += float64(v)
			}
		}
	}
	var col arrow.Array
	if typ.ID() == arrow.FLOAT32 {
		b := array.NewFloat32Builder(memory.DefaultAllocator)
		for _, v := range sum {
			b.Append(float32(v))
		}
		col = b.NewArray()
	} else {
		col = Float64Array(sum)
	}
	defer col.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "score", Type: typ, Nullable: true}}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{col}, int64(n))
}

// helperEnvBatch returns the score, the working directory and
// $LIMINAL_TEST_VAR per row.
func helperEnvBatch(in arrow.RecordBatch) arrow.RecordBatch {
	score := helperScore(in, arrow.PrimitiveTypes.Float64)
	defer score.Release()
	cwd, _ := os.Getwd()
	cb := array.NewStringBuilder(memory.DefaultAllocator)
	eb := array.NewStringBuilder(memory.DefaultAllocator)
	for i := int64(0); i < in.NumRows(); i++ {
		cb.Append(cwd)
		eb.Append(os.Getenv("LIMINAL_TEST_VAR"))
	}
	c, e := cb.NewArray(), eb.NewArray()
	defer c.Release()
	defer e.Release()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "cwd", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "env", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{score.Column(0), c, e}, in.NumRows())
}

// helperConfig is a command model config running the helper in mode.
func helperConfig(t testing.TB, mode string) Config {
	exe, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Format:  "command",
		Command: []string{exe, "-test.run=^TestHelperProcess$"},
		Env:     []string{helperEnv + "=" + mode},
		Outputs: []OutputField{{Name: "score", Type: "double"}},
		Timeout: 30 * time.Second,
	}
}

func openHelper(t testing.TB, mode string, edit ...func(*Config)) Model {
	t.Helper()
	cfg := helperConfig(t, mode)
	for _, e := range edit {
		e(&cfg)
	}
	m, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// xyBatch has columns x (float64, i/4) and y (int64, i), from row start.
func xyBatch(start, n int) arrow.RecordBatch {
	x := make([]float64, n)
	y := make([]int64, n)
	for i := range x {
		x[i] = float64(start+i) / 4
		y[i] = int64(start + i)
	}
	xa, ya := Float64Array(x), Int64Array(y)
	defer xa.Release()
	defer ya.Release()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "y", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{xa, ya}, int64(n))
}

// checkScores checks score = x + y = 1.25 * row for rows from start.
func checkScores(t *testing.T, col arrow.Array, start int) {
	t.Helper()
	vals := col.(*array.Float64).Float64Values()
	for i, v := range vals {
		if want := 1.25 * float64(start+i); v != want {
			t.Fatalf("row %d: score %v, want %v", start+i, v, want)
		}
	}
}

// noLeaks fails the test if goroutines started during it outlive it.
func noLeaks(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines: %d before, %d after:\n%s", base, runtime.NumGoroutine(), buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// processGone reports whether pid has died: it no longer exists, or it is
// a zombie (an orphan waiting for init to reap it, which some container
// inits do late).
func processGone(pid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i:]), ") Z") {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func predictErr(t *testing.T, m Model, rows int) (error, time.Duration) {
	t.Helper()
	in := xyBatch(0, rows)
	defer in.Release()
	start := time.Now()
	out, err := m.Predict(context.Background(), in)
	if err == nil {
		out.Release()
		t.Fatalf("Predict succeeded, want an error")
	}
	if !errors.Is(err, ErrCommand) {
		t.Errorf("error does not wrap ErrCommand: %v", err)
	}
	return err, time.Since(start)
}

func wantContains(t *testing.T, err error, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q\ndoes not contain %q", err, s)
		}
	}
}

func TestCommandPredict(t *testing.T) {
	noLeaks(t)
	for _, mode := range []string{"score", "rebatch", "slurp"} {
		t.Run(mode, func(t *testing.T) {
			m := openHelper(t, mode)
			for _, n := range []int{1, 1000, 200_000} {
				in := xyBatch(0, n)
				out, err := m.Predict(context.Background(), in)
				in.Release()
				if err != nil {
					t.Fatal(err)
				}
				if out.NumRows() != int64(n) || !out.Schema().Equal(m.OutputSchema()) {
					t.Fatalf("got %d rows of %s, want %d of %s", out.NumRows(), out.Schema(), n, m.OutputSchema())
				}
				checkScores(t, out.Column(0), 0)
				out.Release()
			}
		})
	}
}

func TestCommandZeroRows(t *testing.T) {
	noLeaks(t)
	for _, mode := range []string{"score", "empty"} {
		m := openHelper(t, mode)
		in := xyBatch(0, 0)
		out, err := m.Predict(context.Background(), in)
		in.Release()
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if out.NumRows() != 0 || out.NumCols() != 1 {
			t.Fatalf("%s: got %d rows, %d columns", mode, out.NumRows(), out.NumCols())
		}
		out.Release()
	}
}

func TestCommandSchemas(t *testing.T) {
	m := openHelper(t, "score", func(c *Config) {
		c.Inputs = []string{"x", "y"}
		c.Outputs = []OutputField{{"a", "double"}, {"b", "FLOAT"}, {"c", "bigint"}, {"d", "integer"}, {"e", "boolean"}, {"f", "varchar"}}
	})
	if AllColumns(m) {
		t.Error("AllColumns with declared inputs")
	}
	in := m.InputSchema()
	if in.NumFields() != 2 || in.Field(0).Name != "x" || in.Field(1).Type.ID() != arrow.NULL {
		t.Errorf("input schema %s", in)
	}
	want := []arrow.Type{arrow.FLOAT64, arrow.FLOAT32, arrow.INT64, arrow.INT32, arrow.BOOL, arrow.STRING}
	for i, f := range m.OutputSchema().Fields() {
		if f.Type.ID() != want[i] {
			t.Errorf("output %s: %s, want %s", f.Name, f.Type, want[i])
		}
	}
	// Inputs bind to any column type.
	src := arrow.NewSchema([]arrow.Field{{Name: "y", Type: arrow.BinaryTypes.String}, {Name: "x", Type: arrow.FixedWidthTypes.Boolean}}, nil)
	if _, err := Bind(m, src); err != nil {
		t.Errorf("Bind: %v", err)
	}

	all := openHelper(t, "score", func(c *Config) { c.Outputs = nil })
	if !AllColumns(all) || all.InputSchema() == nil || all.InputSchema().NumFields() != 0 || all.OutputSchema() != nil {
		t.Errorf("no inputs/outputs: AllColumns %v, in %v, out %v", AllColumns(all), all.InputSchema(), all.OutputSchema())
	}
	if AllColumns(nil) {
		t.Error("AllColumns(nil)")
	}
}

// TestCommandStream streams many batches through one process, with
// undeclared outputs, the configured Dir and Env.
func TestCommandStream(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	m := openHelper(t, "env", func(c *Config) {
		c.Outputs = nil
		c.Dir = dir
		c.Env = append(c.Env, "LIMINAL_TEST_VAR=hello")
	})
	const batches, size = 20, 5000
	var recs []arrow.RecordBatch
	for i := 0; i < batches; i++ {
		recs = append(recs, xyBatch(i*size, size))
	}
	src, err := array.NewRecordReader(recs[0].Schema(), recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Release()
	}
	out, err := m.(StreamModel).PredictStream(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	pid := out.(*commandRun).pid
	if s := out.Schema(); s == nil || s.NumFields() != 3 || s.Field(1).Name != "cwd" {
		t.Fatalf("schema %v", s)
	}
	rows := 0
	for out.Next() {
		rec := out.RecordBatch()
		checkScores(t, rec.Column(0), rows)
		cwd := rec.Column(1).(*array.String)
		env := rec.Column(2).(*array.String)
		if cwd.Value(0) != dir || env.Value(0) != "hello" {
			t.Fatalf("cwd %q env %q, want %q and hello", cwd.Value(0), env.Value(0), dir)
		}
		rows += int(rec.NumRows())
	}
	if err := out.Err(); err != nil {
		t.Fatal(err)
	}
	out.Release()
	src.Release()
	if rows != batches*size {
		t.Fatalf("%d rows, want %d", rows, batches*size)
	}
	if !processGone(pid) {
		t.Errorf("process %d still exists", pid)
	}
}

// TestCommandStreamRelease releases the output before its end: the
// process is killed and every goroutine ends.
func TestCommandStreamRelease(t *testing.T) {
	noLeaks(t)
	m := openHelper(t, "score")
	recs := []arrow.RecordBatch{xyBatch(0, 100), xyBatch(100, 100), xyBatch(200, 100)}
	src, _ := array.NewRecordReader(recs[0].Schema(), recs)
	for _, r := range recs {
		r.Release()
	}
	defer src.Release()
	out, err := m.(StreamModel).PredictStream(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Next() {
		t.Fatal(out.Err())
	}
	pid := out.(*commandRun).pid
	out.Release()
	if !processGone(pid) {
		t.Errorf("process %d still exists", pid)
	}
}

// errReader yields one batch, then fails.
type errReader struct {
	array.RecordReader
	n int
}

func (r *errReader) Next() bool {
	r.n++
	return r.n == 1 && r.RecordReader.Next()
}
func (r *errReader) Err() error { return errors.New("upstream broke") }

func TestCommandInputError(t *testing.T) {
	noLeaks(t)
	m := openHelper(t, "score")
	rec := xyBatch(0, 10)
	src, _ := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	rec.Release()
	defer src.Release()
	out, err := m.(StreamModel).PredictStream(context.Background(), &errReader{RecordReader: src})
	if err != nil {
		t.Fatal(err)
	}
	for out.Next() {
	}
	err = out.Err()
	out.Release()
	if err == nil {
		t.Fatal("no error")
	}
	wantContains(t, err, "reading the input", "upstream broke")
}

func TestCommandOpenErrors(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "score.py")
	if err := os.WriteFile(script, []byte("print(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Format: "command"}, "needs command"},
		{Config{Format: "command", Command: []string{"no-such-program-liminal"}}, `program "no-such-program-liminal" not found in PATH`},
		{Config{Format: "command", Command: []string{"./missing.py"}, Dir: dir}, "missing.py not found"},
		{Config{Format: "command", Command: []string{"./score.py"}, Dir: dir}, "is not executable"},
		{Config{Format: "command", Command: []string{dir + "/"}}, "is a directory"},
		{Config{Format: "command", Command: []string{"sh"}, Outputs: []OutputField{{"s", "decimal"}}}, `type "decimal"`},
		{Config{Format: "command", Command: []string{"sh"}, Outputs: []OutputField{{"s", "double"}, {"s", "double"}}}, "appears twice"},
		{Config{Format: "command", Command: []string{"sh"}, Inputs: []string{"a", "a"}}, "appears twice"},
	} {
		_, err := Open(tc.cfg)
		if err == nil {
			t.Errorf("%v: no error", tc.cfg.Command)
			continue
		}
		if !errors.Is(err, ErrCommand) {
			t.Errorf("%v: not ErrCommand: %v", tc.cfg.Command, err)
		}
		wantContains(t, err, tc.want)
	}
}

// TestCommandStartError: the program vanished after Open.
func TestCommandStartError(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := Open(Config{Format: "command", Command: []string{"./prog"}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	os.Remove(prog)
	err, _ = predictErr(t, m, 3)
	wantContains(t, err, "starting "+prog)
}

func TestCommandExitStatus(t *testing.T) {
	noLeaks(t)
	err, _ := predictErr(t, openHelper(t, "exit3"), 10)
	wantContains(t, err, "exited with status 3", "Traceback: something went wrong")
}

func TestCommandCrash(t *testing.T) {
	noLeaks(t)
	err, _ := predictErr(t, openHelper(t, "crash"), 10)
	wantContains(t, err, "killed by signal 9", "about to crash")
}

func TestCommandStderrTail(t *testing.T) {
	err, _ := predictErr(t, openHelper(t, "stderrspam"), 10)
	wantContains(t, err, "exited with status 1", "[...]", "THE END")
	if strings.Contains(err.Error(), "log line 0000") {
		t.Error("stderr tail not truncated")
	}
	if len(err.Error()) > commandStderrTail+1024 {
		t.Errorf("error is %d bytes long", len(err.Error()))
	}
}

func TestCommandTimeout(t *testing.T) {
	noLeaks(t)
	m := openHelper(t, "hang", func(c *Config) { c.Timeout = 300 * time.Millisecond })
	err, took := predictErr(t, m, 10)
	wantContains(t, err, "timed out after 300ms")
	if took > 5*time.Second {
		t.Errorf("took %s", took)
	}
}

// TestCommandTimeoutKillsChildren: the program's children die with it.
func TestCommandTimeoutKillsChildren(t *testing.T) {
	noLeaks(t)
	m := openHelper(t, "hangchild", func(c *Config) { c.Timeout = 500 * time.Millisecond })
	err, _ := predictErr(t, m, 10)
	wantContains(t, err, "timed out after 500ms")
	match := regexp.MustCompile(`child=(\d+)`).FindStringSubmatch(err.Error())
	if match == nil {
		t.Fatalf("no child pid in %v", err)
	}
	pid, _ := strconv.Atoi(match[1])
	if !processGone(pid) {
		t.Errorf("child %d of the program still exists", pid)
	}
}

// TestCommandTimeoutIsInactivity: a stream slower in total than the timeout
// passes as long as every batch comes in time.
func TestCommandTimeoutIsInactivity(t *testing.T) {
	noLeaks(t)
	m := openHelper(t, "slow", func(c *Config) { c.Timeout = time.Second })
	recs := []arrow.RecordBatch{}
	for i := 0; i < 6; i++ {
		recs = append(recs, xyBatch(i*10, 10))
	}
	src, _ := array.NewRecordReader(recs[0].Schema(), recs)
	for _, r := range recs {
		r.Release()
	}
	defer src.Release()
	out, err := m.(StreamModel).PredictStream(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	rows := 0
	for out.Next() {
		rows += int(out.RecordBatch().NumRows())
	}
	if err := out.Err(); err != nil || rows != 60 {
		t.Fatalf("%d rows, error %v", rows, err)
	}
}

func TestCommandCancel(t *testing.T) {
	noLeaks(t)
	m := openHelper(t, "hang")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	in := xyBatch(0, 10)
	defer in.Release()
	start := time.Now()
	_, err := m.Predict(ctx, in)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCommand) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("cancel took %s", took)
	}
	if _, err := m.Predict(ctx, in); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}
}

func TestCommandClose(t *testing.T) {
	noLeaks(t)
	m := openHelper(t, "hang")
	in := xyBatch(0, 10)
	defer in.Release()
	done := make(chan error, 1)
	go func() {
		_, err := m.Predict(context.Background(), in)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	m.Close()
	select {
	case err := <-done:
		wantContains(t, err, "closed")
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop Predict")
	}
	if _, err := m.Predict(context.Background(), in); err == nil || !strings.Contains(err.Error(), "after Close") {
		t.Errorf("Predict after Close: %v", err)
	}
}

func TestCommandRowCount(t *testing.T) {
	noLeaks(t)
	err, _ := predictErr(t, openHelper(t, "short"), 10)
	wantContains(t, err, "returned 9 rows for 10 input rows")
	err, _ = predictErr(t, openHelper(t, "extra"), 10)
	wantContains(t, err, "more rows than it was given: 13 rows for 10 input rows")
}

func TestCommandGarbage(t *testing.T) {
	noLeaks(t)
	for _, mode := range []string{"garbage", "garbagehang"} {
		err, took := predictErr(t, openHelper(t, mode), 10)
		wantContains(t, err, "must write an Arrow IPC stream to stdout", `stdout began with "score=0.5\n\x00\x01 and more"`, "I print my results")
		if took > 5*time.Second {
			t.Errorf("%s: took %s", mode, took)
		}
	}
	err, _ := predictErr(t, openHelper(t, "empty"), 10)
	wantContains(t, err, "exited without writing to stdout")
}

func TestCommandSchemaMismatch(t *testing.T) {
	noLeaks(t)
	err, _ := predictErr(t, openHelper(t, "wrongschema"), 10)
	wantContains(t, err, "output schema (score float32) does not match the declared outputs (score float64)")
	err, _ = predictErr(t, openHelper(t, "score", func(c *Config) {
		c.Outputs = []OutputField{{"score", "double"}, {"label", "bigint"}}
	}), 10)
	wantContains(t, err, "does not match the declared outputs (score float64, label int64)")
}

// TestCommandPythonExample runs examples/command_model/score.py.
func TestCommandPythonExample(t *testing.T) {
	python := os.Getenv("LIMINAL_PYTHON")
	if python == "" {
		home, _ := os.UserHomeDir()
		python = filepath.Join(home, ".cache", "liminal", "venv", "bin", "python")
		if _, err := os.Stat(python); err != nil {
			if os.Getenv("LIMINAL_SKIP_PYTHON") == "1" {
				t.Skip("no Python environment (LIMINAL_SKIP_PYTHON=1)")
			}
			t.Fatalf("no Python environment at %s: run scripts/pyenv.sh (or set LIMINAL_PYTHON, or LIMINAL_SKIP_PYTHON=1 to skip)", python)
		}
	}
	noLeaks(t)
	dir, err := filepath.Abs("../examples/command_model")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(Config{
		Format:  "command",
		Command: []string{python, "score.py"},
		Dir:     dir,
		Inputs:  []string{"amount", "quantity"},
		Outputs: []OutputField{{Name: "score", Type: "double"}},
		Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	const n = 100_000
	amount := array.NewFloat64Builder(memory.DefaultAllocator)
	quantity := array.NewInt32Builder(memory.DefaultAllocator)
	for i := 0; i < n; i++ {
		if i%97 == 0 {
			amount.AppendNull()
		} else {
			amount.Append(float64(i%500) * 1.5)
		}
		quantity.Append(int32(i % 7))
	}
	a, q := amount.NewArray(), quantity.NewArray()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "quantity", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	}, nil)
	var recs []arrow.RecordBatch
	for off := 0; off < n; off += 30_000 {
		end := min(off+30_000, n)
		cols := []arrow.Array{array.NewSlice(a, int64(off), int64(end)), array.NewSlice(q, int64(off), int64(end))}
		recs = append(recs, array.NewRecordBatch(schema, cols, int64(end-off)))
		cols[0].Release()
		cols[1].Release()
	}
	a.Release()
	q.Release()
	src, _ := array.NewRecordReader(schema, recs)
	defer src.Release()
	for _, r := range recs {
		r.Release()
	}
	out, err := m.(StreamModel).PredictStream(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	row := 0
	for out.Next() {
		for _, v := range out.RecordBatch().Column(0).(*array.Float64).Float64Values() {
			amt := 0.0
			if row%97 != 0 {
				amt = float64(row%500) * 1.5
			}
			z := -2.0 + 0.35*math.Log1p(amt) + 0.2*float64(row%7)
			if want := 1 / (1 + math.Exp(-z)); math.Abs(v-want) > 1e-12 {
				t.Fatalf("row %d: score %v, want %v", row, v, want)
			}
			row++
		}
	}
	if err := out.Err(); err != nil {
		t.Fatal(err)
	}
	if row != n {
		t.Fatalf("%d rows, want %d", row, n)
	}
}

// BenchmarkCommandEcho streams 1M rows of 10 float64 columns in 64K-row
// batches through the helper's echo program (one process per iteration).
func BenchmarkCommandEcho(b *testing.B) {
	const rows, cols, batch = 1 << 20, 10, 64 << 10
	fields := make([]arrow.Field, cols)
	for c := range fields {
		fields[c] = arrow.Field{Name: "c" + strconv.Itoa(c), Type: arrow.PrimitiveTypes.Float64, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	var recs []arrow.RecordBatch
	for off := 0; off < rows; off += batch {
		arrs := make([]arrow.Array, cols)
		for c := range arrs {
			v := make([]float64, batch)
			for i := range v {
				v[i] = float64(off+i) + float64(c)/10
			}
			arrs[c] = Float64Array(v)
		}
		recs = append(recs, array.NewRecordBatch(schema, arrs, batch))
	}
	m := openHelper(b, "echo", func(c *Config) { c.Outputs = nil })
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src, _ := array.NewRecordReader(schema, recs)
		out, err := m.(StreamModel).PredictStream(context.Background(), src)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for out.Next() {
			n += int(out.RecordBatch().NumRows())
		}
		if err := out.Err(); err != nil {
			b.Fatal(err)
		}
		out.Release()
		src.Release()
		if n != rows {
			b.Fatalf("%d rows", n)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
