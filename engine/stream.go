package engine

/*
#cgo CPPFLAGS: -DDUCKDB_STATIC_BUILD -I${SRCDIR}/cduckdb
#include <stdlib.h>
#include "duckdb.h"
*/
import "C"

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	"github.com/marcboeker/go-duckdb"
)

// spinPolls is how many idle polls execCount makes before it sleeps.
const spinPolls = 200

// interruptOnCancel interrupts the query running on con when ctx is done,
// until the returned stop is called. After stop returns no interrupt
// reaches con any more: one already started has finished, a later one is
// skipped — the connection may be closed right after (a bare
// context.AfterFunc runs its function on a goroutine that can be scheduled
// after the engine closed the connection: a crash seen in CI).
func interruptOnCancel(ctx context.Context, con C.duckdb_connection) (stop func()) {
	var mu sync.Mutex
	stopped := false
	unregister := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			C.duckdb_interrupt(con)
		}
	})
	return func() {
		unregister()
		mu.Lock()
		stopped = true
		mu.Unlock()
	}
}

// duckStream streams a query's result out of DuckDB as Arrow batches of one
// vector (2048 rows) each, without materializing it: go-duckdb v1.8.5's
// Arrow interface materializes whole results, so this reader uses DuckDB's
// streaming C API (pending streaming result, stream_fetch_chunk,
// result_arrow_array) on the raw connection go-duckdb opened. Memory is
// bounded by what DuckDB buffers plus one batch. The header in cduckdb/ is
// the one go-duckdb v1.8.5 builds DuckDB 1.1.3 with; the symbols come from
// go-duckdb's static library.
//
// The reader must be used from one goroutine at a time; Release destroys
// the result (idempotent) and must not run concurrently with Next.
type duckStream struct {
	con     C.duckdb_connection
	stmt    C.duckdb_prepared_statement
	pending C.duckdb_pending_result
	res     C.duckdb_result
	hasRes  bool
	schema  *arrow.Schema
	cur     arrow.RecordBatch
	err     error
	done    bool
	stop    func()
	once    sync.Once
	ctx     context.Context
}

var _ array.RecordReader = (*duckStream)(nil)

// rawConn returns the duckdb_connection behind a go-duckdb connection.
func rawConn(conn *sql.Conn) (C.duckdb_connection, error) {
	var con C.duckdb_connection
	err := conn.Raw(func(dc any) error {
		v := reflect.ValueOf(dc)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		f := v.Elem().FieldByName("duckdbCon")
		if !f.IsValid() || f.Type().Size() != unsafe.Sizeof(con) {
			return fmt.Errorf("driver connection %T has no duckdbCon handle (go-duckdb version changed?)", dc)
		}
		con = *(*C.duckdb_connection)(unsafe.Pointer(f.UnsafeAddr()))
		return nil
	})
	return con, err
}

// streamQuery starts q on conn and returns its result as a stream. The
// schema is learnt first from a LIMIT 0 run through go-duckdb's Arrow
// interface, so that types are exactly those of the materialized path.
func streamQuery(ctx context.Context, conn *sql.Conn, q string) (array.RecordReader, error) {
	empty, err := queryReader(ctx, conn, "SELECT * FROM ("+q+") LIMIT 0")
	if err != nil {
		return nil, err
	}
	schema := empty.Schema()
	empty.Release()
	con, err := rawConn(conn)
	if err != nil {
		return nil, err
	}
	s := &duckStream{con: con, schema: schema, ctx: ctx}
	if s.stmt, s.pending, err = preparePending(con, q, true); err != nil {
		return nil, err
	}
	// A cancelled context interrupts the query wherever it is.
	s.stop = interruptOnCancel(ctx, con)
	if C.duckdb_execute_pending(s.pending, &s.res) == C.DuckDBError {
		s.hasRes = true
		err := duckErr(C.GoString(C.duckdb_result_error(&s.res)))
		s.Release()
		return nil, ctxErr(ctx, err)
	}
	s.hasRes = true
	return s, nil
}

// preparePending prepares q on con and creates its pending result,
// streaming or materialized. On an error nothing is left to destroy.
func preparePending(con C.duckdb_connection, q string, streaming bool) (C.duckdb_prepared_statement, C.duckdb_pending_result, error) {
	cq := C.CString(q)
	defer C.free(unsafe.Pointer(cq))
	var stmt C.duckdb_prepared_statement
	var pending C.duckdb_pending_result
	if C.duckdb_prepare(con, cq, &stmt) == C.DuckDBError {
		err := duckErr(C.GoString(C.duckdb_prepare_error(stmt)))
		C.duckdb_destroy_prepare(&stmt)
		return nil, nil, err
	}
	var state C.duckdb_state
	if streaming {
		state = C.duckdb_pending_prepared_streaming(stmt, &pending)
	} else {
		state = C.duckdb_pending_prepared(stmt, &pending)
	}
	if state == C.DuckDBError {
		err := duckErr(C.GoString(C.duckdb_pending_error(pending)))
		C.duckdb_destroy_pending(&pending)
		C.duckdb_destroy_prepare(&stmt)
		return nil, nil, err
	}
	return stmt, pending, nil
}

// ctxErr is the context's error once it is done (the query was
// interrupted because of it), else err.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

func (s *duckStream) Schema() *arrow.Schema          { return s.schema }
func (s *duckStream) RecordBatch() arrow.RecordBatch { return s.cur }
func (s *duckStream) Record() arrow.RecordBatch      { return s.cur }
func (s *duckStream) Err() error                     { return s.err }
func (s *duckStream) Retain()                        {}

// Next fetches the next chunk and converts it to Arrow (the buffers move
// into Go's import without a copy of the values).
func (s *duckStream) Next() bool {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	if s.done || s.err != nil {
		return false
	}
	chunk := C.duckdb_stream_fetch_chunk(s.res)
	if chunk == nil {
		s.done = true
		if msg := C.duckdb_result_error(&s.res); msg != nil {
			s.err = ctxErr(s.ctx, duckErr(C.GoString(msg)))
		} else if err := s.ctx.Err(); err != nil {
			s.err = err
		}
		return false
	}
	defer C.duckdb_destroy_data_chunk(&chunk)
	arr := C.calloc(1, C.size_t(unsafe.Sizeof(cdata.CArrowArray{})))
	defer func() {
		cdata.ReleaseCArrowArray((*cdata.CArrowArray)(arr))
		C.free(arr)
	}()
	C.duckdb_result_arrow_array(s.res, chunk, (*C.duckdb_arrow_array)(unsafe.Pointer(&arr)))
	rec, err := cdata.ImportCRecordBatchWithSchema((*cdata.CArrowArray)(arr), s.schema)
	if err != nil {
		s.err = fmt.Errorf("import arrow batch: %w", err)
		return false
	}
	s.cur = rec
	return true
}

// Release ends the query and frees its result. Idempotent.
func (s *duckStream) Release() {
	s.once.Do(func() {
		if s.cur != nil {
			s.cur.Release()
			s.cur = nil
		}
		if s.stop != nil {
			s.stop()
		}
		if s.hasRes {
			C.duckdb_destroy_result(&s.res)
		}
		if s.pending != nil {
			C.duckdb_destroy_pending(&s.pending)
		}
		if s.stmt != nil {
			C.duckdb_destroy_prepare(&s.stmt)
		}
	})
}

// duckErrTypes maps DuckDB's message prefixes to go-duckdb's error types,
// so that IsUserError classifies streamed errors like the others.
var duckErrTypes = map[string]duckdb.ErrorType{
	"Parser Error":          duckdb.ErrorTypeParser,
	"Syntax Error":          duckdb.ErrorTypeSyntax,
	"Binder Error":          duckdb.ErrorTypeBinder,
	"Catalog Error":         duckdb.ErrorTypeCatalog,
	"Conversion Error":      duckdb.ErrorTypeConversion,
	"Out of Range Error":    duckdb.ErrorTypeOutOfRange,
	"Invalid Input Error":   duckdb.ErrorTypeInvalidInput,
	"Constraint Error":      duckdb.ErrorTypeConstraint,
	"Not implemented Error": duckdb.ErrorTypeNotImplemented,
	"Mismatch Type Error":   duckdb.ErrorTypeMismatchType,
	"Divide by Zero Error":  duckdb.ErrorTypeDivideByZero,
	"Invalid type Error":    duckdb.ErrorTypeInvalidType,
	"IO Error":              duckdb.ErrorTypeIO,
	"Permission Error":      duckdb.ErrorTypePermission,
	"Interrupt Error":       duckdb.ErrorTypeInterrupt,
	"Out of Memory Error":   duckdb.ErrorTypeOutOfMemory,
}

func duckErr(msg string) error {
	if msg == "" {
		return errors.New("duckdb: unknown error")
	}
	prefix, _, _ := strings.Cut(msg, ": ")
	t, ok := duckErrTypes[prefix]
	if !ok {
		t = duckdb.ErrorTypeInvalid
	}
	return &duckdb.Error{Type: t, Msg: msg}
}

// execCount runs q, a statement whose result is a row count (COPY ... TO,
// CREATE TABLE ... AS), and returns that count. It drives the execution
// itself through DuckDB's pending-result API instead of letting DuckDB
// 1.1's execute loop run it: that loop busy-spins whenever no task is
// available to the calling thread, which is the whole time a background
// thread holds the only task and waits for a Go stream (a network source
// slower than DuckDB) — one core burnt per running partition, measured at
// +4.5 CPU-s and +50% wall on a 5M-row PostgreSQL extraction (DuckDB issue
// 22178). Here the calling thread polls a little, then sleeps, backing
// off from 25µs to 0.5ms, until there is work again.
func execCount(ctx context.Context, conn *sql.Conn, q string) (int64, error) {
	con, err := rawConn(conn)
	if err != nil {
		return 0, err
	}
	stmt, pending, err := preparePending(con, q, false)
	if err != nil {
		return 0, err
	}
	defer C.duckdb_destroy_prepare(&stmt)
	defer C.duckdb_destroy_pending(&pending)
	defer interruptOnCancel(ctx, con)()
	// Idle: first poll again at once for a while (work usually comes back
	// within microseconds: the next pipeline, a task rescheduled), then
	// sleep, doubling up to half a millisecond.
	idle, nap := 0, time.Duration(0)
	for ready := false; !ready; {
		switch C.duckdb_pending_execute_task(pending) {
		case C.DUCKDB_PENDING_RESULT_READY:
			ready = true
		case C.DUCKDB_PENDING_ERROR:
			return 0, ctxErr(ctx, duckErr(C.GoString(C.duckdb_pending_error(pending))))
		case C.DUCKDB_PENDING_NO_TASKS_AVAILABLE:
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
	var res C.duckdb_result
	defer C.duckdb_destroy_result(&res)
	if C.duckdb_execute_pending(pending, &res) == C.DuckDBError {
		return 0, ctxErr(ctx, duckErr(C.GoString(C.duckdb_result_error(&res))))
	}
	if C.duckdb_column_count(&res) > 0 && C.duckdb_row_count(&res) > 0 {
		return int64(C.duckdb_value_int64(&res, 0, 0)), nil
	}
	return int64(C.duckdb_rows_changed(&res)), nil
}
