package engine

// The engine talks to DuckDB through its C API, as the duckdb-go project's
// public bindings package (github.com/duckdb/duckdb-go-bindings) exposes it:
// database/sql cannot stream a result (duckdb-go materializes every result
// before the first row), and a partition's result must stream — to the
// scorer, to Go-side writers — with memory bounded by a few batches. The only
// C this file needs is calloc/free for the Arrow stream handed to DuckDB.

/*
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	bindings "github.com/duckdb/duckdb-go-bindings"

	"github.com/liminal-data/liminal/internal/arrowref"
)

// database is one DuckDB instance.
type database struct{ h bindings.Database }

// openDatabase starts an in-memory DuckDB instance; the engine configures
// it with SET GLOBAL statements before any job runs.
func openDatabase() (*database, error) {
	var cfg bindings.Config
	if bindings.CreateConfig(&cfg) == bindings.StateError {
		return nil, errors.New("duckdb: create config")
	}
	defer bindings.DestroyConfig(&cfg)
	d := &database{}
	var msg string
	if bindings.OpenExt("", &d.h, cfg, &msg) == bindings.StateError {
		bindings.Close(&d.h)
		return nil, duckErr(msg)
	}
	return d, nil
}

func (d *database) connect() (*conn, error) {
	c := &conn{}
	if bindings.Connect(d.h, &c.h) == bindings.StateError {
		bindings.Disconnect(&c.h)
		return nil, errors.New("duckdb: connect")
	}
	return c, nil
}

func (d *database) close() { bindings.Close(&d.h) }

// conn is one DuckDB connection. It runs one statement at a time; a
// streaming result holds it until the result is released.
type conn struct{ h bindings.Connection }

func (c *conn) close() { bindings.Disconnect(&c.h) }

// Conn is a DuckDB connection of the engine lent to a caller (WithConn).
type Conn interface {
	// Exec runs one statement and discards its result.
	Exec(ctx context.Context, q string) error
	// Query runs one statement and streams its result; the caller releases
	// the reader before it uses the connection again.
	Query(ctx context.Context, q string) (array.RecordReader, error)
}

var _ Conn = (*conn)(nil)

func (c *conn) Exec(ctx context.Context, q string) error {
	_, err := c.execCount(ctx, q)
	return err
}

func (c *conn) Query(ctx context.Context, q string) (array.RecordReader, error) {
	return c.stream(ctx, q)
}

// interruptOnCancel interrupts the statement running on c when ctx is done,
// until the returned stop is called. After stop returns no interrupt
// reaches c any more: one already started has finished, a later one is
// skipped — the connection may be closed right after (a bare
// context.AfterFunc runs its function on a goroutine that can be scheduled
// after the engine closed the connection: a crash seen in CI).
func interruptOnCancel(ctx context.Context, c *conn) (stop func()) {
	var mu sync.Mutex
	stopped := false
	unregister := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			bindings.Interrupt(c.h)
		}
	})
	return func() {
		unregister()
		mu.Lock()
		stopped = true
		mu.Unlock()
	}
}

// prepare prepares q, one statement, and creates its pending result,
// streaming or materialized. On an error nothing is left to destroy.
func (c *conn) prepare(q string, streaming bool) (bindings.PreparedStatement, bindings.PendingResult, error) {
	var stmt bindings.PreparedStatement
	var pending bindings.PendingResult
	if bindings.Prepare(c.h, q, &stmt) == bindings.StateError {
		err := duckErr(bindings.PrepareError(stmt))
		bindings.DestroyPrepare(&stmt)
		return stmt, pending, err
	}
	var state bindings.State
	if streaming {
		state = bindings.PendingPreparedStreaming(stmt, &pending) //nolint:staticcheck // the one way to stream in DuckDB 2.0's C API
	} else {
		state = bindings.PendingPrepared(stmt, &pending)
	}
	if state == bindings.StateError {
		err := duckErr(bindings.PendingError(pending))
		bindings.DestroyPending(&pending)
		bindings.DestroyPrepare(&stmt)
		return stmt, pending, err
	}
	return stmt, pending, nil
}

// execCount runs q, a statement whose result is a row count (COPY ... TO,
// CREATE TABLE ... AS) or nothing, and returns that count. It drives the
// execution itself through DuckDB's pending-result API instead of letting
// DuckDB's execute loop run it: that loop busy-spins whenever no task is
// available to the calling thread, which is the whole time a background
// thread holds the only task and waits for a Go stream (a network source
// slower than DuckDB) — one core burnt per running partition (DuckDB issue
// 22178; still so in 2.0: TestWaitingForAStreamIsIdle). Here the calling
// thread polls a little, then sleeps, backing off from 25µs to 0.5ms,
// until there is work again.
func (c *conn) execCount(ctx context.Context, q string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	stmt, pending, err := c.prepare(q, false)
	if err != nil {
		return 0, err
	}
	defer bindings.DestroyPrepare(&stmt)
	defer bindings.DestroyPending(&pending)
	defer interruptOnCancel(ctx, c)()
	// Idle: first poll again at once for a while (work usually comes back
	// within microseconds: the next pipeline, a task rescheduled), then
	// sleep, doubling up to half a millisecond.
	idle, nap := 0, time.Duration(0)
	for ready := false; !ready; {
		switch bindings.PendingExecuteTask(pending) {
		case bindings.PendingStateResultReady:
			ready = true
		case bindings.PendingStateError:
			return 0, ctxErr(ctx, duckErr(bindings.PendingError(pending)))
		case bindings.PendingStateNoTasksAvailable:
			if idle++; idle <= spinPolls {
				runtime.Gosched()
				continue
			}
			nap = min(max(2*nap, 25*time.Microsecond), 500*time.Microsecond)
			time.Sleep(nap)
		default:
			idle, nap = 0, 0
		}
	}
	var res bindings.Result
	state := bindings.ExecutePending(pending, &res)
	defer bindings.DestroyResult(&res)
	if state == bindings.StateError {
		return 0, ctxErr(ctx, duckErr(bindings.ResultError(&res)))
	}
	if bindings.ColumnCount(&res) == 1 {
		// COPY and CREATE TABLE AS return their row count as a one-row result.
		chunk := bindings.FetchChunk(res)
		if chunk.Ptr != nil {
			n := chunkInt64(chunk)
			bindings.DestroyDataChunk(&chunk)
			if n >= 0 {
				return n, nil
			}
		}
	}
	return int64(bindings.RowsChanged(&res)), nil
}

// spinPolls is how many idle polls execCount makes before it sleeps.
const spinPolls = 200

// chunkInt64 reads the first value of a one-column BIGINT chunk, or -1.
func chunkInt64(chunk bindings.DataChunk) int64 {
	if bindings.DataChunkGetSize(chunk) < 1 || bindings.DataChunkGetColumnCount(chunk) != 1 {
		return -1
	}
	vec := bindings.DataChunkGetVector(chunk, 0)
	lt := bindings.VectorGetColumnType(vec)
	defer bindings.DestroyLogicalType(&lt)
	if bindings.GetTypeId(lt) != bindings.TypeBigInt {
		return -1
	}
	return *(*int64)(bindings.VectorGetData(vec))
}

// ctxErr is the context's error once it is done (the statement was
// interrupted because of it), else err.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// stream starts q and returns its result as a stream of Arrow batches of
// one vector (2048 rows) each, without materializing it: memory is bounded
// by what DuckDB buffers plus one batch.
func (c *conn) stream(ctx context.Context, q string) (array.RecordReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &duckStream{ctx: ctx}
	s.Init(s.free)
	var err error
	if s.stmt, s.pending, err = c.prepare(q, true); err != nil {
		return nil, err
	}
	// A cancelled context interrupts the query wherever it is.
	s.stop = interruptOnCancel(ctx, c)
	s.hasRes = true
	if bindings.ExecutePending(s.pending, &s.res) == bindings.StateError {
		err := duckErr(bindings.ResultError(&s.res))
		s.Release()
		return nil, ctxErr(ctx, err)
	}
	s.opts = bindings.ResultGetArrowOptions(&s.res)
	s.hasOpts = true
	n := int(bindings.ColumnCount(&s.res))
	names := make([]string, n)
	types := make([]bindings.LogicalType, n)
	for i := range n {
		names[i] = bindings.ColumnName(&s.res, bindings.IdxT(i))
		types[i] = bindings.ColumnLogicalType(&s.res, bindings.IdxT(i))
	}
	schema, ed := bindings.NewArrowSchema(s.opts, types, names)
	for i := range types {
		bindings.DestroyLogicalType(&types[i])
	}
	if err := errorData(ed); err != nil {
		s.Release()
		return nil, fmt.Errorf("arrow schema of the result: %w", err)
	}
	s.schema = schema
	return s, nil
}

// errorData turns DuckDB's error data into an error (nil when there is
// none) and destroys it.
func errorData(ed bindings.ErrorData) error {
	if ed.Ptr == nil {
		return nil
	}
	defer bindings.DestroyErrorData(&ed)
	if !bindings.ErrorDataHasError(ed) {
		return nil
	}
	return duckErr(bindings.ErrorDataMessage(ed))
}

// duckStream is a streaming query result read as Arrow batches. It must be
// used from one goroutine at a time; Release must not run concurrently
// with Next.
type duckStream struct {
	ctx      context.Context
	stmt     bindings.PreparedStatement
	pending  bindings.PendingResult
	res      bindings.Result
	hasRes   bool
	opts     bindings.ArrowOptions
	hasOpts  bool
	schema   *arrow.Schema
	cur      arrow.RecordBatch
	err      error
	done     bool
	stop     func()
	released bool
	arrowref.Count
}

var _ array.RecordReader = (*duckStream)(nil)

func (s *duckStream) Schema() *arrow.Schema          { return s.schema }
func (s *duckStream) RecordBatch() arrow.RecordBatch { return s.cur }
func (s *duckStream) Record() arrow.RecordBatch      { return s.cur }
func (s *duckStream) Err() error                     { return s.err }

// Next fetches the next chunk and converts it to Arrow.
func (s *duckStream) Next() bool {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	if s.done || s.err != nil || s.released {
		return false
	}
	chunk := bindings.FetchChunk(s.res)
	if chunk.Ptr == nil {
		s.done = true
		if msg := bindings.ResultError(&s.res); msg != "" {
			s.err = ctxErr(s.ctx, duckErr(msg))
		} else if err := s.ctx.Err(); err != nil {
			s.err = err
		}
		return false
	}
	defer bindings.DestroyDataChunk(&chunk)
	rec, ed := bindings.DataChunkToArrowArray(s.opts, s.schema, chunk)
	if err := errorData(ed); err != nil {
		s.err = fmt.Errorf("arrow batch: %w", err)
		return false
	}
	s.cur = rec
	return true
}

// free ends the query and frees its result, on the last Release.
func (s *duckStream) free() {
	s.released = true
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	if s.stop != nil {
		s.stop()
	}
	if s.hasOpts {
		bindings.DestroyArrowOptions(&s.opts)
	}
	if s.hasRes {
		bindings.DestroyResult(&s.res)
	}
	bindings.DestroyPending(&s.pending)
	bindings.DestroyPrepare(&s.stmt)
}

// registerArrow makes r scannable as the table function view name on c
// (DuckDB's arrow_scan). The returned release ends the stream's export:
// call it once the view is dropped.
func (c *conn) registerArrow(r array.RecordReader, name string) (release func(), err error) {
	stream := C.calloc(1, C.size_t(unsafe.Sizeof(cdata.CArrowArrayStream{})))
	release = func() {
		cdata.ReleaseCArrowArrayStream((*cdata.CArrowArrayStream)(stream))
		C.free(stream)
	}
	cdata.ExportRecordReader(r, (*cdata.CArrowArrayStream)(stream))
	if bindings.ArrowScan(c.h, name, bindings.ArrowStream{Ptr: stream}) == bindings.StateError {
		release()
		return nil, errors.New("duckdb: arrow scan registration refused")
	}
	return release, nil
}

// Error is an error DuckDB reported. Class is DuckDB's error class, the
// prefix of its message ("Binder", "IO", "Conversion", ...).
type Error struct {
	Class string
	Msg   string
}

func (e *Error) Error() string { return e.Msg }

func duckErr(msg string) error {
	if msg == "" {
		return &Error{Class: "Unknown", Msg: "duckdb: unknown error"}
	}
	prefix, _, _ := strings.Cut(msg, ": ")
	class, ok := strings.CutSuffix(prefix, " Error")
	if !ok || strings.ContainsAny(class, "\n") {
		class = "Unknown"
	}
	return &Error{Class: class, Msg: msg}
}
