package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	goduckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/internal/arrowref"
	"github.com/liminal-data/liminal/partition"
)

// Source reads a table of a DuckDB database file through its own duckdb-go
// instance (the file opened read-only unless this process also writes it).
// Splits are rowid ranges; a split is read in pages of page_rows rowids
// (default 16384) inside one transaction, so memory is bounded by a page,
// not by the split.
//
// Options: partitions (number of splits), page_rows.
type Source struct {
	name       string
	l          *location
	partitions int
	pageRows   int64

	// onStatement, when set, sees every query a Read sends (tests).
	onStatement func(string)

	mu     sync.Mutex
	schema *arrow.Schema
}

var _ connectors.ArrowSource = (*Source)(nil)

// OpenSource configures a source; the file is opened per operation.
func OpenSource(_ context.Context, c connectors.SourceConfig) (connectors.Source, error) {
	return newSource(c)
}

func newSource(c connectors.SourceConfig) (*Source, error) {
	l, err := parseURI(c.URI, c.BaseDir)
	if err != nil {
		return nil, err
	}
	s := &Source{name: c.Name, l: l, pageRows: 16384}
	if s.name == "" {
		s.name = l.table
	}
	for k, v := range c.Options {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case k != "partitions" && k != "page_rows":
			return nil, connectors.Permanent(fmt.Errorf("source %s: unknown option %q (want partitions, page_rows)", c.URI, k))
		case err != nil || n < 1:
			return nil, connectors.Permanent(fmt.Errorf("source %s: option %s=%q: want a positive integer", c.URI, k, v))
		case k == "partitions":
			s.partitions = int(n)
		default:
			s.pageRows = n
		}
	}
	return s, nil
}

// Describe implements connectors.Source.
func (s *Source) Describe() string {
	return fmt.Sprintf("duckdb %s (table %s)", s.l.path, s.l.qualified(s.l.table))
}

func (s *Source) conn(ctx context.Context) (*sql.Conn, func(), error) {
	db, release, err := acquire(s.l.path, true)
	if err != nil {
		return nil, nil, err
	}
	c, err := db.Conn(ctx)
	if err != nil {
		release()
		return nil, nil, classify(fmt.Errorf("duckdb %s: %w", s.l.path, err))
	}
	return c, func() { c.Close(); release() }, nil
}

// Schema implements connectors.Source.
func (s *Source) Schema(ctx context.Context) (*arrow.Schema, error) {
	s.mu.Lock()
	sc := s.schema
	s.mu.Unlock()
	if sc != nil {
		return sc, nil
	}
	c, done, err := s.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return s.schemaOn(ctx, c)
}

func (s *Source) schemaOn(ctx context.Context, c *sql.Conn) (*arrow.Schema, error) {
	rr, err := query(ctx, c, "SELECT * FROM "+s.l.qualified(s.l.table)+" LIMIT 0")
	if err != nil {
		return nil, classify(fmt.Errorf("duckdb %s: table %s: %w", s.l.path, s.l.table, err))
	}
	sc := rr.Schema()
	rr.Release()
	s.mu.Lock()
	s.schema = sc
	s.mu.Unlock()
	return sc, nil
}

// Splits implements connectors.Source: rowid ranges over [min, max]; the
// first and last are open-ended, so every row is in exactly one split.
func (s *Source) Splits(ctx context.Context, o partition.Options) ([]partition.Split, error) {
	c, done, err := s.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var rows int64
	var lo, hi sql.NullInt64
	err = c.QueryRowContext(ctx, "SELECT count(*), min(rowid), max(rowid) FROM "+s.l.qualified(s.l.table)).Scan(&rows, &lo, &hi)
	if err != nil {
		return nil, classify(fmt.Errorf("duckdb %s: table %s: %w", s.l.path, s.l.table, err))
	}
	n := s.partitions
	if n == 0 {
		target := o.TargetRows
		if target <= 0 {
			slots := int64(max(1, o.Slots))
			target = min(max((rows+2*slots-1)/(2*slots), partition.MinAutoRows), partition.MaxAutoRows)
		}
		n = int(min((rows+target-1)/target, 1<<16))
	}
	if o.By == partition.None {
		n = 1
	}
	if o.MaxPartitions > 0 {
		n = min(n, o.MaxPartitions)
	}
	if lo.Valid {
		n = int(min(int64(n), hi.Int64-lo.Int64+1))
	}
	n = max(n, 1)
	mk := func(i int, from, to string, r int64) partition.Split {
		loc := fmt.Sprintf("%s rowid [%s, %s)", s.l.table, from, to)
		return partition.Split{ID: fmt.Sprintf("%s-%05d", connectors.SafeName(s.name), i), Source: s.name, Locator: loc,
			Rows: r, Attrs: map[string]string{"rowid_from": from, "rowid_to": to}}
	}
	if n == 1 || !lo.Valid {
		return []partition.Split{mk(0, "", "", rows)}, nil
	}
	span := hi.Int64 - lo.Int64 + 1
	var out []partition.Split
	for i := 0; i < n; i++ {
		from, to := "", ""
		if i > 0 {
			from = strconv.FormatInt(lo.Int64+span*int64(i)/int64(n), 10)
		}
		if i < n-1 {
			to = strconv.FormatInt(lo.Int64+span*int64(i+1)/int64(n), 10)
		}
		out = append(out, mk(i, from, to, rows/int64(n)))
	}
	return out, nil
}

// Read implements connectors.ArrowSource.
func (s *Source) Read(ctx context.Context, sp partition.Split, cols []string) (array.RecordReader, error) {
	var from, to *int64
	for k, p := range map[string]**int64{"rowid_from": &from, "rowid_to": &to} {
		if v := sp.Attrs[k]; v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, connectors.Permanent(fmt.Errorf("duckdb split %s: bad %s %q", sp.ID, k, v))
			}
			*p = &n
		}
	}
	c, done, err := s.conn(ctx)
	if err != nil {
		return nil, err
	}
	sc, err := s.schemaOn(ctx, c)
	if err != nil {
		done()
		return nil, err
	}
	sel := "*"
	out := sc
	if cols != nil {
		var list []string
		var fields []arrow.Field
		for _, name := range cols {
			idx := sc.FieldIndices(name)
			if len(idx) == 0 {
				done()
				return nil, connectors.Permanent(fmt.Errorf("duckdb %s: table %s has no column %q", s.l.path, s.l.table, name))
			}
			list = append(list, ident(name))
			fields = append(fields, sc.Field(idx[0]))
		}
		sel = strings.Join(list, ", ")
		out = arrow.NewSchema(fields, nil)
	}
	if _, err := c.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		done()
		return nil, classify(err)
	}
	// Pages: [lo, hi) rowid windows within the split, starting at the
	// split's lower end or the table's smallest rowid.
	var start, end int64
	if err := c.QueryRowContext(ctx, "SELECT coalesce(min(rowid), 0), coalesce(max(rowid), -1) + 1 FROM "+s.l.qualified(s.l.table)).Scan(&start, &end); err != nil {
		done()
		return nil, classify(err)
	}
	if from != nil {
		start = max(start, *from)
	}
	if to != nil {
		end = min(end, *to)
	}
	r := &reader{src: s, ctx: ctx, conn: c, done: done, sel: sel, schema: out, next: start, end: end}
	r.Init(r.free)
	return r, nil
}

// reader pages through a split: one query per page of rowids, its rows
// scanned through database/sql into one Arrow batch (bounded memory per
// page; duckdb-go's Arrow query results are materialized whole).
type reader struct {
	src    *Source
	ctx    context.Context
	conn   *sql.Conn
	done   func()
	sel    string
	schema *arrow.Schema
	next   int64
	end    int64
	cur    arrow.RecordBatch
	err    error
	arrowref.Count
}

func (r *reader) Schema() *arrow.Schema          { return r.schema }
func (r *reader) RecordBatch() arrow.RecordBatch { return r.cur }
func (r *reader) Record() arrow.RecordBatch      { return r.cur }
func (r *reader) Err() error                     { return r.err }

// free runs on the last Release.
func (r *reader) free() {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	_, _ = r.conn.ExecContext(context.Background(), "ROLLBACK")
	r.done()
}

func (r *reader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	for r.err == nil && r.next < r.end {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			return false
		}
		hi := min(r.end, r.next+r.src.pageRows)
		q := fmt.Sprintf("SELECT %s FROM %s WHERE rowid >= %d AND rowid < %d", r.sel, r.src.l.qualified(r.src.l.table), r.next, hi)
		r.next = hi
		if r.src.onStatement != nil {
			r.src.onStatement(q)
		}
		rec, err := r.page(q)
		if err != nil {
			if cerr := r.ctx.Err(); cerr != nil {
				r.err = cerr
			} else {
				r.err = classify(fmt.Errorf("duckdb %s: %w", r.src.l.path, err))
			}
			return false
		}
		if rec.NumRows() == 0 {
			rec.Release()
			continue
		}
		r.cur = rec
		return true
	}
	if r.err == nil {
		if err := r.ctx.Err(); err != nil {
			r.err = err
		}
	}
	return false
}

func (r *reader) page(q string) (arrow.RecordBatch, error) {
	rows, err := r.conn.QueryContext(r.ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	b := array.NewRecordBuilder(memory.DefaultAllocator, r.schema)
	defer b.Release()
	n := len(r.schema.Fields())
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	count := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			if err := appendValue(b.Field(i), v); err != nil {
				return nil, fmt.Errorf("column %s: %w", r.schema.Field(i).Name, err)
			}
		}
		count++
		if count%1024 == 0 {
			if err := r.ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return b.NewRecordBatch(), nil
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case int:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), true
	}
	return 0, false
}

// appendValue appends a value scanned by duckdb-go to a builder of the
// Arrow type DuckDB exports for the column.
func appendValue(b array.Builder, v any) error {
	if v == nil {
		b.AppendNull()
		return nil
	}
	bad := func() error { return fmt.Errorf("cannot convert %T to Arrow %s", v, b.Type()) }
	switch b := b.(type) {
	case *array.Int8Builder, *array.Int16Builder, *array.Int32Builder, *array.Int64Builder:
		n, ok := toInt64(v)
		if !ok {
			return bad()
		}
		switch b := b.(type) {
		case *array.Int8Builder:
			b.Append(int8(n))
		case *array.Int16Builder:
			b.Append(int16(n))
		case *array.Int32Builder:
			b.Append(int32(n))
		case *array.Int64Builder:
			b.Append(n)
		}
	case *array.Uint8Builder:
		n, ok := toInt64(v)
		if !ok {
			return bad()
		}
		b.Append(uint8(n))
	case *array.Uint16Builder:
		n, ok := toInt64(v)
		if !ok {
			return bad()
		}
		b.Append(uint16(n))
	case *array.Uint32Builder:
		n, ok := toInt64(v)
		if !ok {
			return bad()
		}
		b.Append(uint32(n))
	case *array.Uint64Builder:
		x, ok := v.(uint64)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Float32Builder:
		x, ok := v.(float32)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.Float64Builder:
		x, ok := v.(float64)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.BooleanBuilder:
		x, ok := v.(bool)
		if !ok {
			return bad()
		}
		b.Append(x)
	case *array.StringBuilder:
		switch x := v.(type) {
		case string:
			b.Append(x)
		case []byte:
			if len(x) == 16 { // UUID
				u := goduckdb.UUID(x)
				b.Append(u.String())
			} else {
				b.Append(string(x))
			}
		default:
			b.Append(fmt.Sprint(v))
		}
	case *array.BinaryBuilder:
		switch x := v.(type) {
		case []byte:
			b.Append(x)
		case string:
			b.Append([]byte(x))
		default:
			return bad()
		}
	case *array.Date32Builder:
		x, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		b.Append(arrow.Date32FromTime(x))
	case *array.TimestampBuilder:
		x, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		ts, err := arrow.TimestampFromTime(x, b.Type().(*arrow.TimestampType).Unit)
		if err != nil {
			return err
		}
		b.Append(ts)
	case *array.Time64Builder:
		x, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		d := x.Sub(time.Date(x.Year(), x.Month(), x.Day(), 0, 0, 0, 0, x.Location()))
		if b.Type().(*arrow.Time64Type).Unit == arrow.Nanosecond {
			b.Append(arrow.Time64(d.Nanoseconds()))
		} else {
			b.Append(arrow.Time64(d.Microseconds()))
		}
	case *array.Decimal128Builder:
		switch x := v.(type) {
		case goduckdb.Decimal:
			b.Append(decimal128.FromBigInt(x.Value))
		case *big.Int:
			b.Append(decimal128.FromBigInt(x))
		default:
			return bad()
		}
	case *array.ListBuilder:
		x, ok := v.([]any)
		if !ok {
			return bad()
		}
		b.Append(true)
		for _, e := range x {
			if err := appendValue(b.ValueBuilder(), e); err != nil {
				return err
			}
		}
	default:
		return bad()
	}
	return nil
}
