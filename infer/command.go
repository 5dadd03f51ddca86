package infer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/internal/arrowref"
)

// The command model format runs user code, in the shape of Spark's
// mapInArrow: Config.Command is a program that reads one Arrow IPC stream
// of record batches on stdin and writes one Arrow IPC stream of output
// batches on stdout.
//
// Protocol, from the program's side:
//
//   - stdin carries one IPC stream (schema, batches, end-of-stream marker).
//     Its columns are Config.Inputs in order, or, when no inputs are
//     declared, every column of the task's input (AllColumns reports it).
//   - stdout must carry one IPC stream with exactly as many rows as were
//     read, in the same order; batch boundaries may differ from the input's.
//     With Config.Outputs declared, its schema must have those names and
//     types, in order; without, the program's schema is the output schema
//     (OutputSchema returns nil and the first output batch defines it).
//   - stderr is free for logs; its last 8 KiB appear in error messages.
//   - the program must exit with status 0 after writing its stream.
//   - Config.Timeout (default 10 minutes) bounds how long the program may
//     go without progress (consuming an input batch or producing an output
//     batch) while Liminal waits for it; time spent waiting for Liminal's
//     own input or for a slow consumer does not count.
//
// Lifecycle: every Predict call and every PredictStream call runs one
// process, in its own process group (Setpgid) so the program's children
// are killed with it. The engine streams a whole partition through one
// process with PredictStream (StreamModel); Predict is PredictStream over a
// single batch, so it pays for a process start per call.
//
// The program runs in Config.Dir with os.Environ() plus Config.Env. A
// program path that contains a slash is resolved against Config.Dir; a bare
// name is looked up in PATH. Both are checked when the model is opened.

// ErrCommand marks every error of a command model's program (it did not
// start, failed, timed out, or broke the protocol); the message names the
// program and carries the tail of its stderr.
var ErrCommand = errors.New("command model")

// StreamModel is a Model that can score a stream of batches in one go (one
// process per stream for command models).
type StreamModel interface {
	Model
	// PredictStream scores every batch of in and returns a reader of the
	// output batches: the same rows in the same order, possibly with other
	// batch boundaries, with OutputSchema (or, when that is nil, the
	// schema of the first output batch). in is read on another goroutine
	// while the caller reads the result; the caller keeps ownership of in
	// and must release it only after the returned reader has been
	// released (Release waits until in is no longer used). The returned
	// reader is used by one goroutine; its Err reports failures, including
	// crashes, timeouts and row count mismatches detected after the last
	// batch. Release stops the work (killing a running process).
	PredictStream(ctx context.Context, in array.RecordReader) (array.RecordReader, error)
}

// AllColumns reports whether m takes every column of its input rather than
// the fields of its InputSchema: a command model without declared inputs,
// whose InputSchema has zero fields. Bind selects no column for such a
// model, so the caller passes the input batches whole instead.
func AllColumns(m Model) bool {
	a, ok := m.(interface{ AllColumns() bool })
	return ok && a.AllColumns()
}

const (
	commandDefaultTimeout = 10 * time.Minute
	commandStderrTail     = 8 << 10
	commandHeadBytes      = 64
	commandPipeSize       = 1 << 20 // Linux F_SETPIPE_SZ request; best effort
	commandMaxBody        = 1 << 30 // largest output batch body accepted
)

// commandGrace is how long a program whose stdout broke the protocol is
// given to exit on its own (its exit status explains more) before it is
// killed; commandDrain bounds the wait for stderr after the program died.
var (
	commandGrace = 500 * time.Millisecond
	commandDrain = time.Second
)

// commandOutputTypes maps the SQL type names of Config.Outputs to Arrow.
var commandOutputTypes = map[string]arrow.DataType{
	"double":  arrow.PrimitiveTypes.Float64,
	"float":   arrow.PrimitiveTypes.Float32,
	"bigint":  arrow.PrimitiveTypes.Int64,
	"integer": arrow.PrimitiveTypes.Int32,
	"boolean": arrow.FixedWidthTypes.Boolean,
	"varchar": arrow.BinaryTypes.String,
}

type commandModel struct {
	name    string   // for messages: the command as the user wrote it
	path    string   // resolved program
	argv    []string // argv[0] as written
	dir     string
	env     []string
	timeout time.Duration
	in, out *arrow.Schema
	all     bool

	mu     sync.Mutex
	closed bool
	runs   map[*commandRun]struct{}
}

func init() { Register("command", openCommand) }

func openCommand(cfg Config) (Model, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, fmt.Errorf("%w: a command model needs command: [program, args...]", ErrCommand)
	}
	m := &commandModel{
		name:    fmt.Sprintf("%v", cfg.Command),
		argv:    append([]string(nil), cfg.Command...),
		dir:     cfg.Dir,
		env:     append(os.Environ(), cfg.Env...),
		timeout: cfg.Timeout,
		runs:    map[*commandRun]struct{}{},
	}
	if m.timeout <= 0 {
		m.timeout = commandDefaultTimeout
	}
	path, err := commandProgram(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrCommand, m.name, err)
	}
	m.path = path

	seen := map[string]bool{}
	in := make([]arrow.Field, len(cfg.Inputs))
	for i, n := range cfg.Inputs {
		if n == "" || seen[n] {
			return nil, fmt.Errorf("%w %s: input %q is empty or appears twice", ErrCommand, m.name, n)
		}
		seen[n] = true
		in[i] = arrow.Field{Name: n, Type: arrow.Null, Nullable: true}
	}
	m.in = arrow.NewSchema(in, nil)
	m.all = len(in) == 0

	if len(cfg.Outputs) > 0 {
		out := make([]arrow.Field, len(cfg.Outputs))
		seen = map[string]bool{}
		for i, o := range cfg.Outputs {
			t, ok := commandOutputTypes[strings.ToLower(strings.TrimSpace(o.Type))]
			if !ok {
				return nil, fmt.Errorf("%w %s: output %q has type %q (want double, float, bigint, integer, boolean or varchar)", ErrCommand, m.name, o.Name, o.Type)
			}
			if o.Name == "" || seen[o.Name] {
				return nil, fmt.Errorf("%w %s: output %q is empty or appears twice", ErrCommand, m.name, o.Name)
			}
			seen[o.Name] = true
			out[i] = arrow.Field{Name: o.Name, Type: t, Nullable: true}
		}
		m.out = arrow.NewSchema(out, nil)
	}
	return m, nil
}

// commandProgram resolves the program of cfg.Command: paths with a slash
// against cfg.Dir, bare names in PATH; it must be an executable file.
func commandProgram(cfg Config) (string, error) {
	p := cfg.Command[0]
	if !strings.ContainsRune(p, '/') && !strings.ContainsRune(p, filepath.Separator) {
		lp, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("program %q not found in PATH", p)
		}
		return lp, nil
	}
	abs, err := filepath.Abs(cfg.Resolve(p))
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	switch {
	case err != nil:
		return "", fmt.Errorf("program %s not found: %w", abs, errors.Unwrap(err))
	case st.IsDir():
		return "", fmt.Errorf("program %s is a directory", abs)
	case st.Mode()&0o111 == 0:
		return "", fmt.Errorf("program %s is not executable (chmod +x it, or name its interpreter first: command: [python3, %s])", abs, p)
	}
	return abs, nil
}

func (m *commandModel) InputSchema() *arrow.Schema { return m.in }

// OutputSchema is the declared outputs, or nil when none are declared (the
// program's first output batch then defines the schema).
func (m *commandModel) OutputSchema() *arrow.Schema { return m.out }

// AllColumns reports that no inputs are declared: the program receives
// every input column.
func (m *commandModel) AllColumns() bool { return m.all }

// Close kills the processes still running and makes later calls fail.
func (m *commandModel) Close() error {
	m.mu.Lock()
	m.closed = true
	runs := make([]*commandRun, 0, len(m.runs))
	for r := range m.runs {
		runs = append(runs, r)
	}
	m.mu.Unlock()
	for _, r := range runs {
		r.kill(fmt.Errorf("%w %s: the model was closed", ErrCommand, m.name))
	}
	return nil
}

// Predict runs the program over one batch: PredictStream over in, with the
// output batches concatenated into one.
func (m *commandModel) Predict(ctx context.Context, in arrow.RecordBatch) (arrow.RecordBatch, error) {
	src, err := array.NewRecordReader(in.Schema(), []arrow.RecordBatch{in})
	if err != nil {
		return nil, err
	}
	defer src.Release()
	out, err := m.PredictStream(ctx, src)
	if err != nil {
		return nil, err
	}
	defer out.Release()
	var recs []arrow.RecordBatch
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for out.Next() {
		rec := out.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := out.Err(); err != nil {
		return nil, err
	}
	schema := out.Schema()
	if len(recs) > 0 {
		schema = recs[0].Schema()
	}
	if schema == nil {
		schema = arrow.NewSchema(nil, nil)
	}
	return concatBatches(schema, recs)
}

// concatBatches joins recs into one batch (the one batch itself, retained,
// when there is only one).
func concatBatches(schema *arrow.Schema, recs []arrow.RecordBatch) (arrow.RecordBatch, error) {
	if len(recs) == 1 {
		recs[0].Retain()
		return recs[0], nil
	}
	var rows int64
	for _, r := range recs {
		rows += r.NumRows()
	}
	cols := make([]arrow.Array, schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	parts := make([]arrow.Array, len(recs))
	for i, f := range schema.Fields() {
		if len(recs) == 0 {
			cols[i] = array.MakeArrayOfNull(memory.DefaultAllocator, f.Type, 0)
			continue
		}
		for k, r := range recs {
			parts[k] = r.Column(i)
		}
		c, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			return nil, fmt.Errorf("%w: concatenating output column %q: %w", ErrCommand, f.Name, err)
		}
		cols[i] = c
	}
	return array.NewRecordBatch(schema, cols, rows), nil
}

// PredictStream starts the program, writes in to its stdin on a new
// goroutine and returns a reader of its stdout (see StreamModel).
func (m *commandModel) PredictStream(ctx context.Context, in array.RecordReader) (array.RecordReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrCommand, m.name, err)
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w %s: Predict after Close", ErrCommand, m.name)
	}
	r := &commandRun{
		m:          m,
		ctx:        ctx,
		in:         in,
		tail:       &tailBuffer{max: commandStderrTail},
		writeDone:  make(chan struct{}),
		exited:     make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
	r.Init(r.free)
	if err := r.start(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		r.kill(fmt.Errorf("%w %s: the model was closed", ErrCommand, m.name))
		r.finish(nil)
		return nil, r.err
	}
	m.runs[r] = struct{}{}
	m.mu.Unlock()
	return r, nil
}

// commandRun is one process: the writer goroutine feeds stdin, the waiter
// goroutine reaps the process, the stderr goroutine keeps the tail, and
// the consumer reads stdout through the RecordReader methods.
type commandRun struct {
	m    *commandModel
	ctx  context.Context
	in   array.RecordReader
	cmd  *exec.Cmd
	pid  int
	tail *tailBuffer

	stdin          *os.File
	stdout, stderr *os.File
	stdoutBuf      *bufio.Reader
	head           headRecorder
	stopCtx        func() bool
	timer          *time.Timer
	writeDone      chan struct{}
	exited         chan struct{}
	stderrDone     chan struct{}
	written        atomic.Int64 // rows handed to the program so far
	writeComplete  bool         // all of in was written (after writeDone)
	writeErr       error        // after writeDone
	waitErr        error        // after exited
	state          *os.ProcessState
	arrowref.Count
	finished        atomic.Bool
	killMu          sync.Mutex
	reason          error // why we killed the process, first wins
	killed          bool  // we signalled the process group
	actMu           sync.Mutex
	lastActive      time.Time
	consumerWaiting bool
	upstreamWaiting bool

	// consumer side
	rdr    *ipc.Reader
	opened bool
	cur    arrow.RecordBatch
	read   int64
	err    error
}

func (r *commandRun) start() error {
	m := r.m
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (*os.File, *os.File, error) {
		pr, pw, err := os.Pipe()
		if err == nil {
			files = append(files, pr, pw)
			setPipeSize(pw)
		}
		return pr, pw, err
	}
	stdinR, stdinW, err := pipe()
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrCommand, m.name, err)
	}
	stdoutR, stdoutW, err := pipe()
	if err != nil {
		closeAll()
		return fmt.Errorf("%w %s: %w", ErrCommand, m.name, err)
	}
	stderrR, stderrW, err := pipe()
	if err != nil {
		closeAll()
		return fmt.Errorf("%w %s: %w", ErrCommand, m.name, err)
	}
	cmd := &exec.Cmd{
		Path:        m.path,
		Args:        m.argv,
		Dir:         m.dir,
		Env:         m.env,
		Stdin:       stdinR,
		Stdout:      stdoutW,
		Stderr:      stderrW,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if err := cmd.Start(); err != nil {
		closeAll()
		return fmt.Errorf("%w %s: starting %s: %w", ErrCommand, m.name, m.path, err)
	}
	// The child holds its ends now.
	stdinR.Close()
	stdoutW.Close()
	stderrW.Close()
	r.cmd, r.pid = cmd, cmd.Process.Pid
	r.stdin, r.stdout, r.stderr = stdinW, stdoutR, stderrR
	r.head.r = stdoutR
	r.stdoutBuf = bufio.NewReaderSize(&r.head, 64<<10)
	r.lastActive = time.Now()

	go func() {
		r.waitErr = cmd.Wait()
		r.state = cmd.ProcessState
		// Children left behind (same process group) die with the program.
		_ = syscall.Kill(-r.pid, syscall.SIGKILL)
		close(r.exited)
	}()
	go func() {
		_, _ = io.Copy(r.tail, r.stderr)
		close(r.stderrDone)
	}()
	go r.write()
	r.stopCtx = context.AfterFunc(r.ctx, func() {
		r.kill(fmt.Errorf("%w %s: %w", ErrCommand, m.name, context.Cause(r.ctx)))
	})
	r.actMu.Lock()
	r.timer = time.AfterFunc(m.timeout, r.watch)
	r.actMu.Unlock()
	return nil
}

// kill records why the process is being stopped (the first reason wins)
// and kills its process group.
func (r *commandRun) kill(reason error) {
	r.killMu.Lock()
	defer r.killMu.Unlock()
	if r.reason == nil {
		r.reason = reason
	}
	select {
	case <-r.exited:
		// Reaped: its process group was killed then; do not signal a pid
		// that may have been reused.
	default:
		r.killed = true
		_ = syscall.Kill(-r.pid, syscall.SIGKILL)
	}
}

func (r *commandRun) killReason() (reason error, killed bool) {
	r.killMu.Lock()
	defer r.killMu.Unlock()
	return r.reason, r.killed
}

// watch is the inactivity timer: it fires when the consumer has waited for
// output for the whole timeout, with no batch consumed or produced by the
// program and the writer not waiting for its own input.
func (r *commandRun) watch() {
	if r.finished.Load() {
		return
	}
	r.actMu.Lock()
	idle := r.consumerWaiting && !r.upstreamWaiting
	since := time.Since(r.lastActive)
	timer := r.timer
	r.actMu.Unlock()
	if idle && since >= r.m.timeout {
		r.kill(fmt.Errorf("%w %s: timed out after %s without progress (no input batch consumed, no output batch written)", ErrCommand, r.m.name, r.m.timeout))
		return
	}
	next := r.m.timeout
	if idle {
		next -= since
	}
	timer.Reset(next)
}

// active marks progress and sets the waiting states the timer looks at:
// the consumer waiting for output, the writer waiting for its input.
func (r *commandRun) active(consumerWaiting, upstreamWaiting *bool) {
	r.actMu.Lock()
	r.lastActive = time.Now()
	if consumerWaiting != nil {
		r.consumerWaiting = *consumerWaiting
	}
	if upstreamWaiting != nil {
		r.upstreamWaiting = *upstreamWaiting
	}
	r.actMu.Unlock()
}

var commandTrue, commandFalse = true, false

// write feeds in to the program's stdin as one IPC stream and closes it.
func (r *commandRun) write() {
	defer close(r.writeDone)
	defer r.stdin.Close()
	bw := bufio.NewWriterSize(r.stdin, 64<<10)
	var w *ipc.Writer
	for {
		r.active(nil, &commandTrue)
		ok := r.in.Next()
		r.active(nil, &commandFalse)
		if !ok {
			break
		}
		rec := r.in.RecordBatch()
		if w == nil {
			w = ipc.NewWriter(bw, ipc.WithSchema(rec.Schema()))
		}
		r.written.Add(rec.NumRows())
		if err := w.Write(rec); err != nil {
			r.writeFailed(err)
			return
		}
		if err := bw.Flush(); err != nil {
			r.writeFailed(err)
			return
		}
		r.active(nil, nil)
	}
	if err := r.in.Err(); err != nil {
		r.writeErr = err
		r.kill(fmt.Errorf("%w %s: reading the input: %w", ErrCommand, r.m.name, err))
		return
	}
	if w == nil {
		if s := r.in.Schema(); s != nil {
			w = ipc.NewWriter(bw, ipc.WithSchema(s))
		}
	}
	if w != nil {
		if err := w.Close(); err != nil {
			r.writeFailed(err)
			return
		}
	}
	if err := bw.Flush(); err != nil {
		r.writeFailed(err)
		return
	}
	r.writeComplete = true
}

// writeFailed handles a failed write to stdin: a closed pipe means the
// program stopped reading (its exit status or output tell why); anything
// else is our failure and stops the program.
func (r *commandRun) writeFailed(err error) {
	r.writeErr = err
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed) {
		return
	}
	r.kill(fmt.Errorf("%w %s: writing the input: %w", ErrCommand, r.m.name, err))
}

// free runs on the last Release: it kills the process if it still runs
// and waits for every goroutine of the run.
func (r *commandRun) free() {
	if !r.finished.Load() {
		r.kill(fmt.Errorf("%w %s: released before the end of its output", ErrCommand, r.m.name))
		r.finish(nil)
	}
	r.dropCurrent()
	if r.rdr != nil {
		r.rdr.Release()
		r.rdr = nil
	}
}

// Schema is the declared outputs or, without them, the program's schema
// (read from its stdout, waiting for it); nil if the program wrote none.
func (r *commandRun) Schema() *arrow.Schema {
	if r.m.out != nil {
		return r.m.out
	}
	if !r.opened && !r.finished.Load() {
		r.active(&commandTrue, nil)
		r.open()
		r.active(&commandFalse, nil)
	}
	if r.rdr != nil {
		return r.rdr.Schema()
	}
	return nil
}

func (r *commandRun) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is RecordBatch.
//
// Deprecated: Use RecordBatch instead.
func (r *commandRun) Record() arrow.RecordBatch { return r.cur }

func (r *commandRun) Err() error { return r.err }

// dropCurrent forgets the current batch (releasing it when it is our
// relabelled copy; the IPC reader owns the others).
func (r *commandRun) dropCurrent() {
	if r.cur != nil && r.m.out != nil {
		r.cur.Release()
	}
	r.cur = nil
}

func (r *commandRun) Next() bool {
	r.dropCurrent()
	if r.finished.Load() {
		return false
	}
	if err := r.ctx.Err(); err != nil {
		r.kill(fmt.Errorf("%w %s: %w", ErrCommand, r.m.name, context.Cause(r.ctx)))
		r.finish(nil)
		return false
	}
	r.active(&commandTrue, nil)
	defer r.active(&commandFalse, nil)
	if !r.opened && !r.open() {
		return false
	}
	if !r.rdr.Next() {
		r.finish(r.rdr.Err())
		return false
	}
	rec := r.rdr.RecordBatch()
	r.read += rec.NumRows()
	if w := r.written.Load(); r.read > w {
		r.kill(fmt.Errorf("%w %s: the program returned more rows than it was given: %d rows for %d input rows so far", ErrCommand, r.m.name, r.read, w))
		r.finish(nil)
		return false
	}
	if r.m.out != nil {
		// Label the columns with the declared schema (the program's may
		// differ in nullability or metadata); no data is copied.
		rec = array.NewRecordBatch(r.m.out, rec.Columns(), rec.NumRows())
	}
	r.cur = rec
	return true
}

// open reads the schema of the program's stream and checks it against the
// declared outputs; on failure it finishes the run.
func (r *commandRun) open() bool {
	r.opened = true
	mr := ipc.NewMessageReader(r.stdoutBuf, ipc.WithMetadataSizeLimit(16<<20), ipc.WithBodySizeLimit(commandMaxBody))
	rdr, err := ipc.NewReaderFromMessageReader(mr)
	if err != nil {
		r.finish(err)
		return false
	}
	r.rdr = rdr
	if want := r.m.out; want != nil && !sameColumns(rdr.Schema(), want) {
		r.kill(fmt.Errorf("%w %s: the program's output schema (%s) does not match the declared outputs (%s)", ErrCommand, r.m.name, schemaText(rdr.Schema()), schemaText(want)))
		r.finish(nil)
		return false
	}
	return true
}

// sameColumns compares names and types, in order (not nullability or
// metadata).
func sameColumns(got, want *arrow.Schema) bool {
	if got.NumFields() != want.NumFields() {
		return false
	}
	for i, f := range want.Fields() {
		g := got.Field(i)
		if g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) {
			return false
		}
	}
	return true
}

func schemaText(s *arrow.Schema) string {
	parts := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		parts[i] = f.Name + " " + f.Type.String()
	}
	return strings.Join(parts, ", ")
}

// finish ends the run once: it makes sure the process is gone, waits for
// the goroutines, and sets Err from what happened. streamErr is the error
// reading stdout (nil at a clean end of stream).
func (r *commandRun) finish(streamErr error) {
	if r.finished.Swap(true) {
		return
	}
	r.actMu.Lock()
	r.timer.Stop()
	r.actMu.Unlock()
	if streamErr != nil {
		// Give a program that broke the protocol a moment to exit on its
		// own: its exit status and stderr usually say more.
		select {
		case <-r.exited:
		case <-time.After(commandGrace):
			r.kill(nil)
		}
	}
	<-r.exited
	r.stdin.Close()
	<-r.writeDone
	r.stdout.Close()
	select {
	case <-r.stderrDone:
	case <-time.After(commandDrain):
		// A process outside the group still holds stderr.
		r.stderr.Close()
		<-r.stderrDone
	}
	r.stderr.Close()
	r.stopCtx()
	r.m.mu.Lock()
	delete(r.m.runs, r)
	r.m.mu.Unlock()
	r.err = r.outcome(streamErr)
}

// outcome explains the run, most telling cause first.
func (r *commandRun) outcome(streamErr error) error {
	name := r.m.name
	tail := r.tail.String()
	withTail := func(err error) error {
		if tail == "" {
			return fmt.Errorf("%w (stderr was empty)", err)
		}
		return fmt.Errorf("%w; stderr tail:\n%s", err, tail)
	}
	reason, killed := r.killReason()
	if reason != nil {
		if errors.Is(reason, context.Canceled) || errors.Is(reason, context.DeadlineExceeded) {
			return reason
		}
		return withTail(reason)
	}
	if !r.state.Success() && !(killed && streamErr != nil) {
		return withTail(fmt.Errorf("%w %s: the program %s", ErrCommand, name, exitText(r.state)))
	}
	if streamErr != nil {
		if len(r.head.bytes) == 0 && errors.Is(streamErr, io.EOF) {
			if r.written.Load() == 0 && r.writeComplete {
				return nil // no input, no output: nothing to do
			}
			return withTail(fmt.Errorf("%w %s: the program exited without writing to stdout; it must write an Arrow IPC stream there (pyarrow: pa.ipc.new_stream(sys.stdout.buffer, schema))", ErrCommand, name))
		}
		return withTail(fmt.Errorf("%w %s: the program must write an Arrow IPC stream to stdout (pyarrow: pa.ipc.new_stream(sys.stdout.buffer, schema)) and its logs to stderr; reading it failed (%v); stdout began with %s", ErrCommand, name, streamErr, strconv.Quote(string(r.head.bytes))))
	}
	if r.writeErr != nil && !r.writeComplete {
		return withTail(fmt.Errorf("%w %s: the program exited before reading all its input (%d rows written so far, %d rows returned): %v", ErrCommand, name, r.written.Load(), r.read, r.writeErr))
	}
	if w := r.written.Load(); r.read != w {
		return withTail(fmt.Errorf("%w %s: the program returned %d rows for %d input rows; it must return exactly one row per input row, in order", ErrCommand, name, r.read, w))
	}
	return nil
}

func exitText(st *os.ProcessState) string {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", st.ExitCode())
}

// headRecorder passes reads through and keeps the first bytes, to show in
// errors about what the program wrote.
type headRecorder struct {
	r     io.Reader
	bytes []byte
}

func (h *headRecorder) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if len(h.bytes) < commandHeadBytes && n > 0 {
		h.bytes = append(h.bytes, p[:min(n, commandHeadBytes-len(h.bytes))]...)
	}
	return n, err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		t.dropped = true
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		n := copy(t.buf, t.buf[len(t.buf)-t.max:])
		t.buf = t.buf[:n]
		t.dropped = true
	}
	return len(p), nil
}

// String is the tail, valid UTF-8, without surrounding blank space.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	dropped := t.dropped
	if len(b) > t.max {
		b = b[len(b)-t.max:]
		dropped = true
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
	if dropped && s != "" {
		s = "[...]" + s
	}
	return s
}

// setPipeSize enlarges a pipe to cut context switches (Linux; elsewhere
// the call fails harmlessly).
func setPipeSize(f *os.File) {
	const fSetPipeSz = 1031
	if sc, err := f.SyscallConn(); err == nil {
		_ = sc.Control(func(fd uintptr) {
			_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, commandPipeSize)
		})
	}
}
