package trino

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/internal/arrowref"
)

// reader streams a query result as Arrow record batches. trino-go-client
// fetches one result page at a time as Next asks for rows, so memory is
// bounded by a page plus one batch, never by the result size.
type reader struct {
	arrowref.Count
	schema *arrow.Schema
	types  []sqlType
	rows   *sql.Rows
	cancel context.CancelFunc
	bld    *array.RecordBuilder
	batch  int
	wrap   func(error) error

	ctx       context.Context // the caller's
	transport *http.Transport // the source's, for closing idle connections
	stopWatch func() bool
	closeOnce sync.Once

	vals []any
	ptrs []any
	cur  arrow.RecordBatch
	err  error
	done bool
}

var _ array.RecordReader = (*reader)(nil)

// newReader streams rows. The query runs under a context of its own
// (cancel cancels it); when ctx, the caller's, is cancelled the reader
// closes rows first, which makes trino-go-client cancel the query on the
// server (DELETE /v1/query/id) — a cancelled context of its own would
// make the client skip that call and leave the query to time out.
func newReader(ctx context.Context, transport *http.Transport, mem memory.Allocator, sc *arrow.Schema, types []sqlType, rows *sql.Rows, cancel context.CancelFunc, batch, ncols int, wrap func(error) error) *reader {
	r := &reader{ctx: ctx, transport: transport, schema: sc, types: types, rows: rows, cancel: cancel, batch: batch, wrap: wrap,
		bld: array.NewRecordBuilder(mem, sc), vals: make([]any, ncols), ptrs: make([]any, ncols)}
	for i := range r.vals {
		r.ptrs[i] = &r.vals[i]
	}
	r.Init(r.free)
	r.stopWatch = context.AfterFunc(ctx, r.close)
	return r
}

// close ends the query once: closing rows before the context lets the
// driver tell the server.
func (r *reader) close() {
	r.closeOnce.Do(func() {
		r.rows.Close()
		r.cancel()
		// Idle keep-alive connections hold two goroutines each; a finished
		// read leaves none behind.
		r.transport.CloseIdleConnections()
	})
}

// free runs on the last Release: it closes the query (a query not read
// to its end is cancelled on the server).
func (r *reader) free() {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	r.stopWatch()
	r.close()
	r.bld.Release()
}

// Schema implements array.RecordReader.
func (r *reader) Schema() *arrow.Schema { return r.schema }

// RecordBatch implements array.RecordReader; the batch is valid until the
// next call to Next or Release.
func (r *reader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record implements array.RecordReader.
//
// Deprecated: use RecordBatch.
func (r *reader) Record() arrow.RecordBatch { return r.cur }

// Err implements array.RecordReader.
func (r *reader) Err() error { return r.err }

// Next implements array.RecordReader.
func (r *reader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.done {
		return false
	}
	n := 0
	for n < r.batch {
		if !r.rows.Next() {
			r.done = true
			if err := r.ctx.Err(); err != nil {
				r.fail(err)
				return false
			}
			if err := r.rows.Err(); err != nil {
				r.fail(r.wrap(err))
				return false
			}
			break
		}
		if err := r.rows.Scan(r.ptrs...); err != nil {
			r.fail(r.wrap(err))
			return false
		}
		for i := range r.types {
			if err := appendValue(r.bld.Field(i), r.types[i], r.vals[i]); err != nil {
				r.fail(r.wrap(fmt.Errorf("column %s: %w", r.schema.Field(i).Name, err)))
				return false
			}
		}
		n++
	}
	if n == 0 {
		return false
	}
	if len(r.types) == 0 {
		r.cur = array.NewRecordBatch(r.schema, nil, int64(n))
		return true
	}
	r.cur = r.bld.NewRecordBatch()
	return true
}

func (r *reader) fail(err error) {
	if cerr := r.ctx.Err(); cerr != nil {
		err = cerr // the rows were closed because ctx ended
	}
	r.err, r.done = err, true
	// Drop a partly built batch.
	if rec := r.bld.NewRecordBatch(); rec != nil {
		rec.Release()
	}
	r.close()
}
