package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/internal/arrowref"
	"github.com/liminal-data/liminal/partition"
)

// Source reads a table or a query of a PostgreSQL database as Arrow
// batches through the binary protocol. It is safe for concurrent use.
//
// Options (the spec's options map):
//
//	partition_column  split into key ranges of this column (integer,
//	                  numeric, float, date, timestamp, timestamptz)
//	lower_bound, upper_bound  the range to cut (default: min and max);
//	                  rows outside still land in the first or last split
//	partitions        number of splits (default: from the row estimate
//	                  and partition.Options)
//	batch_rows        rows per Arrow batch (default 16384)
//	snapshot          auto (default): all splits read one exported
//	                  snapshot while it is held, else each split its own;
//	                  required: fail instead of falling back; off
//	snapshot_hold     how long an exported snapshot is held after its
//	                  last use in this process (default 10m)
//	numeric           decimal (default) or string
type Source struct {
	name       string
	t          *target
	opts       map[string]string
	batchRows  int
	typeOpts   typeOptions
	partCol    string
	partitions int
	snapMode   string
	snapHold   time.Duration
	mem        memory.Allocator

	// onStatement, when set, sees every statement a Read sends (tests).
	onStatement func(string)

	mu      sync.Mutex
	cols    []column // discovered schema
	schema  *arrow.Schema
	holders map[string]*holder // exported snapshots by id
	closed  bool
}

var _ connectors.ArrowSource = (*Source)(nil)

// OpenSource configures a source; it connects lazily.
func OpenSource(_ context.Context, c connectors.SourceConfig) (connectors.Source, error) {
	return newSource(c)
}

func newSource(c connectors.SourceConfig) (*Source, error) {
	t, err := parseURI(c.URI, c.Secret)
	if err != nil {
		return nil, err
	}
	s := &Source{name: c.Name, t: t, opts: c.Options, batchRows: 16384, snapMode: "auto",
		snapHold: 10 * time.Minute, mem: memory.DefaultAllocator, holders: map[string]*holder{}}
	if s.name == "" {
		s.name = firstNonEmpty(t.table, "query")
	}
	bad := func(k, v, want string) error {
		return connectors.Permanent(fmt.Errorf("source %s: option %s=%q: want %s", t.uri, k, v, want))
	}
	for k, v := range c.Options {
		switch k {
		case "partition_column":
			s.partCol = v
		case "lower_bound", "upper_bound":
		case "partitions":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, bad(k, v, "a positive integer")
			}
			s.partitions = n
		case "batch_rows":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, bad(k, v, "a positive integer")
			}
			s.batchRows = n
		case "snapshot":
			if v != "auto" && v != "required" && v != "off" {
				return nil, bad(k, v, "auto, required or off")
			}
			s.snapMode = v
		case "snapshot_hold":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, bad(k, v, "a duration such as 10m")
			}
			s.snapHold = d
		case "numeric":
			if v != "decimal" && v != "string" {
				return nil, bad(k, v, "decimal or string")
			}
			s.typeOpts.numericAsString = v == "string"
		default:
			return nil, connectors.Permanent(fmt.Errorf("source %s: unknown option %q (want partition_column, lower_bound, upper_bound, partitions, batch_rows, snapshot, snapshot_hold, numeric)", t.uri, k))
		}
	}
	return s, nil
}

// Describe implements connectors.Source; the password never appears.
func (s *Source) Describe() string {
	what := "query"
	if s.t.table != "" {
		what = "table " + s.t.qualified(s.t.table)
	}
	d := fmt.Sprintf("postgres %s (%s", s.t.uri, what)
	if s.partCol != "" {
		d += ", partitioned by " + s.partCol
	}
	return d + ")"
}

// from is the FROM clause of the source.
func (s *Source) from() string {
	if s.t.table != "" {
		return s.t.qualified(s.t.table)
	}
	return "(" + s.t.query + ") AS _liminal_q"
}

// Schema implements connectors.Source: the result description of the
// table or query, learnt by preparing it (nothing runs).
func (s *Source) Schema(ctx context.Context) (*arrow.Schema, error) {
	cols, err := s.columns(ctx, nil)
	if err != nil {
		return nil, err
	}
	return schemaOf(cols), nil
}

func schemaOf(cols []column) *arrow.Schema {
	fs := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fs[i] = arrow.Field{Name: c.name, Type: c.typ, Nullable: true}
	}
	return arrow.NewSchema(fs, nil)
}

// columns describes the source's columns, once; conn may be nil.
func (s *Source) columns(ctx context.Context, conn *pgx.Conn) ([]column, error) {
	s.mu.Lock()
	cols := s.cols
	s.mu.Unlock()
	if cols != nil {
		return cols, nil
	}
	if conn == nil {
		c, err := s.t.connect(ctx)
		if err != nil {
			return nil, err
		}
		defer c.Close(context.Background())
		conn = c
	}
	sd, err := conn.Prepare(ctx, "", "SELECT * FROM "+s.from())
	if err != nil {
		return nil, s.t.wrap(err, "describe "+s.what())
	}
	cols = make([]column, len(sd.Fields))
	for i, f := range sd.Fields {
		cols[i] = mapColumn(f.Name, f.DataTypeOID, f.TypeModifier, s.typeOpts)
	}
	s.mu.Lock()
	s.cols, s.schema = cols, schemaOf(cols)
	s.mu.Unlock()
	return cols, nil
}

func (s *Source) what() string {
	if s.t.table != "" {
		return "table " + s.t.qualified(s.t.table)
	}
	return "query"
}

// Split attributes.
const (
	attrWhere    = "where"
	attrSnapshot = "snapshot"
	attrMethod   = "method"
)

// Splits implements connectors.Source. With partition_column it cuts the
// column's range into key ranges; for a table without one, into ctid block
// ranges; a query without one is a single split. NULLs of the partition
// column go to the first split; the first and last splits are open-ended,
// so every row lands in exactly one split whatever the bounds. Splits
// exports a snapshot (pg_export_snapshot) from a transaction it keeps open
// for the readers of the splits (see Read), and computes bounds and
// estimates inside that snapshot.
func (s *Source) Splits(ctx context.Context, o partition.Options) ([]partition.Split, error) {
	h, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	// Bounds and estimates come from a separate, autocommit connection: the
	// holding transaction must take no locks, or it would block DDL (an
	// overwrite's rename, DROP) on the table for as long as it is held.
	// The first and last splits are open-ended, so bounds taken outside
	// the snapshot still cover every row of it.
	conn, err := s.t.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	cols, err := s.columns(ctx, conn)
	if err != nil {
		return nil, err
	}
	snap := ""
	if h != nil {
		snap = h.id
	}
	mk := func(i int, method, where, loc string, rows int64) partition.Split {
		sp := partition.Split{ID: fmt.Sprintf("%s-%05d", connectors.SafeName(s.name), i), Source: s.name,
			Locator: loc, Rows: rows, Attrs: map[string]string{attrMethod: method}}
		if where != "" {
			sp.Attrs[attrWhere] = where
		}
		if snap != "" {
			sp.Attrs[attrSnapshot] = snap
		}
		return sp
	}
	rows, pages, err := s.estimate(ctx, conn)
	if err != nil {
		return nil, err
	}
	n := s.count(o, rows)
	if n <= 1 {
		return []partition.Split{mk(0, "whole", "", s.what(), rows)}, nil
	}
	switch {
	case s.partCol != "":
		var pc *column
		for i := range cols {
			if cols[i].name == s.partCol {
				pc = &cols[i]
			}
		}
		if pc == nil {
			return nil, connectors.Permanent(fmt.Errorf("source %s: partition_column %q is not a column of the %s", s.t.uri, s.partCol, s.what()))
		}
		bounds, err := s.rangeBounds(ctx, conn, pc, n)
		if err != nil {
			return nil, err
		}
		col := ident(pc.name)
		var out []partition.Split
		if len(bounds) == 0 {
			return []partition.Split{mk(0, "whole", "", s.what(), rows)}, nil
		}
		for i := 0; i <= len(bounds); i++ {
			var where, loc string
			switch {
			case i == 0:
				where = fmt.Sprintf("(%s < %s OR %s IS NULL)", col, bounds[0], col)
				loc = fmt.Sprintf("%s < %s or NULL", pc.name, bounds[0])
			case i == len(bounds):
				where = fmt.Sprintf("%s >= %s", col, bounds[i-1])
				loc = fmt.Sprintf("%s >= %s", pc.name, bounds[i-1])
			default:
				where = fmt.Sprintf("%s >= %s AND %s < %s", col, bounds[i-1], col, bounds[i])
				loc = fmt.Sprintf("%s in [%s, %s)", pc.name, bounds[i-1], bounds[i])
			}
			out = append(out, mk(i, "range", where, s.what()+" where "+loc, rows/int64(len(bounds)+1)))
		}
		return out, nil
	case s.t.table != "" && pages > 0:
		n = int(min(int64(n), pages))
		if n <= 1 {
			return []partition.Split{mk(0, "whole", "", s.what(), rows)}, nil
		}
		var out []partition.Split
		for i := 0; i < n; i++ {
			lo, hi := pages*int64(i)/int64(n), pages*int64(i+1)/int64(n)
			var where, loc string
			switch {
			case i == 0:
				where = fmt.Sprintf("ctid < '(%d,0)'::tid", hi)
				loc = fmt.Sprintf("blocks [0, %d)", hi)
			case i == n-1:
				// open-ended: pages added since the estimate are read too
				where = fmt.Sprintf("ctid >= '(%d,0)'::tid", lo)
				loc = fmt.Sprintf("blocks [%d, end)", lo)
			default:
				where = fmt.Sprintf("ctid >= '(%d,0)'::tid AND ctid < '(%d,0)'::tid", lo, hi)
				loc = fmt.Sprintf("blocks [%d, %d)", lo, hi)
			}
			out = append(out, mk(i, "ctid", where, s.what()+" "+loc, rows/int64(n)))
		}
		return out, nil
	}
	return []partition.Split{mk(0, "whole", "", s.what(), rows)}, nil
}

// count is the number of splits to make for rows.
func (s *Source) count(o partition.Options, rows int64) int {
	if o.By == partition.None {
		return 1
	}
	if s.partCol == "" && s.t.table == "" {
		return 1
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
	if o.MaxPartitions > 0 {
		n = min(n, o.MaxPartitions)
	}
	return max(n, 1)
}

var planRows = regexp.MustCompile(`"Plan Rows":\s*([0-9.e+]+)`)

// estimate returns the estimated rows, and for tables the number of
// blocks.
func (s *Source) estimate(ctx context.Context, conn *pgx.Conn) (rows, pages int64, err error) {
	if s.t.table == "" {
		var plan string
		if err := conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON) SELECT * FROM "+s.from()).Scan(&plan); err != nil {
			return 0, 0, s.t.wrap(err, "estimate rows")
		}
		if m := planRows.FindStringSubmatch(plan); m != nil {
			f, _ := strconv.ParseFloat(m[1], 64)
			rows = int64(f)
		}
		return rows, 0, nil
	}
	var tuples float64
	var kind string
	q := `SELECT c.reltuples::float8, c.relkind::text,
		CASE WHEN c.relkind IN ('r','m','t') THEN pg_relation_size(c.oid) / current_setting('block_size')::int8 ELSE 0 END
		FROM pg_class c WHERE c.oid = $1::regclass`
	if err := conn.QueryRow(ctx, q, s.t.qualified(s.t.table)).Scan(&tuples, &kind, &pages); err != nil {
		return 0, 0, s.t.wrap(err, "estimate rows of "+s.what())
	}
	rows = int64(tuples)
	if tuples < 0 || (tuples == 0 && pages > 0) {
		// never analyzed: count small tables, guess for big ones
		if pages < 20000 {
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+s.from()).Scan(&rows); err != nil {
				return 0, 0, s.t.wrap(err, "count rows of "+s.what())
			}
		} else {
			rows = pages * 60
		}
	}
	return rows, pages, nil
}

// rangeBounds returns the n-1 inner boundaries of the partition column
// as SQL literals, in increasing order, without duplicates.
func (s *Source) rangeBounds(ctx context.Context, conn *pgx.Conn, pc *column, n int) ([]string, error) {
	col := ident(pc.name)
	lower, upper := s.opts["lower_bound"], s.opts["upper_bound"]
	bad := func(err error) error {
		return connectors.Permanent(fmt.Errorf("source %s: partition_column %s: %w", s.t.uri, pc.name, err))
	}
	type kind int
	const (
		kInt kind = iota
		kFloat
		kDate
		kTS
		kTSTZ
	)
	var k kind
	var minExpr string
	switch pc.oid {
	case oidInt2, oidInt4, oidInt8:
		k, minExpr = kInt, "%s(%s)::int8"
	case oidFloat4, oidFloat8, oidNumeric:
		k, minExpr = kFloat, "%s(%s)::float8"
	case oidDate:
		k, minExpr = kDate, "(%s(%s) - DATE '1970-01-01')::int8"
	case oidTimestamp:
		k, minExpr = kTS, "(extract(epoch FROM %s(%s)) * 1000000)::int8"
	case oidTimestamptz:
		k, minExpr = kTSTZ, "(extract(epoch FROM %s(%s)) * 1000000)::int8"
	default:
		return nil, bad(fmt.Errorf("type (oid %d) cannot be range-partitioned (want an integer, numeric, float, date or timestamp column)", pc.oid))
	}
	// parse turns an option bound into the same number space.
	parse := func(v string) (float64, error) {
		switch k {
		case kInt, kFloat:
			return strconv.ParseFloat(v, 64)
		case kDate:
			d, err := time.Parse("2006-01-02", v)
			if err != nil {
				return 0, err
			}
			return float64(d.Unix() / 86400), nil
		default:
			for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999", "2006-01-02"} {
				if ts, err := time.Parse(layout, v); err == nil {
					return float64(ts.UnixMicro()), nil
				}
			}
			return 0, fmt.Errorf("bad timestamp %q", v)
		}
	}
	var lo, hi float64
	var loOK, hiOK bool
	if lower != "" {
		v, err := parse(lower)
		if err != nil {
			return nil, bad(fmt.Errorf("lower_bound: %w", err))
		}
		lo, loOK = v, true
	}
	if upper != "" {
		v, err := parse(upper)
		if err != nil {
			return nil, bad(fmt.Errorf("upper_bound: %w", err))
		}
		hi, hiOK = v, true
	}
	if !loOK || !hiOK {
		q := fmt.Sprintf("SELECT "+minExpr+"::float8, "+minExpr+"::float8 FROM %s", "min", col, "max", col, s.from())
		var mn, mx *float64
		if err := conn.QueryRow(ctx, q).Scan(&mn, &mx); err != nil {
			return nil, s.t.wrap(err, "bounds of "+pc.name)
		}
		if mn == nil || mx == nil {
			return nil, nil // no non-NULL values: one split
		}
		if !loOK {
			lo = *mn
		}
		if !hiOK {
			hi = *mx
		}
	}
	if hi < lo {
		return nil, bad(fmt.Errorf("upper_bound is below lower_bound"))
	}
	var out []string
	prev := ""
	for i := 1; i < n; i++ {
		b := lo + (hi-lo)*float64(i)/float64(n)
		var lit string
		switch k {
		case kInt:
			lit = strconv.FormatInt(int64(b), 10)
			if int64(b) <= int64(lo) {
				continue
			}
		case kFloat:
			lit = strconv.FormatFloat(b, 'f', -1, 64)
		case kDate:
			lit = "DATE '" + time.Unix(int64(b)*86400, 0).UTC().Format("2006-01-02") + "'"
		case kTS:
			lit = "TIMESTAMP '" + time.UnixMicro(int64(b)).UTC().Format("2006-01-02 15:04:05.999999") + "'"
		case kTSTZ:
			lit = "TIMESTAMPTZ '" + time.UnixMicro(int64(b)).UTC().Format("2006-01-02 15:04:05.999999") + "+00'"
		}
		if lit == prev {
			continue
		}
		prev = lit
		out = append(out, lit)
	}
	return out, nil
}

// holder keeps the transaction whose snapshot the splits read.
type holder struct {
	id      string
	src     *Source
	mu      sync.Mutex // guards closed
	conn    *pgx.Conn
	created time.Time
	timer   *time.Timer
	closed  bool
}

// snapshotReuse: Splits calls this close together (a planner asking for
// the whole source, then for its partitions) share one snapshot.
const snapshotReuse = time.Minute

// snapshot returns a held, exported snapshot, or nil when snapshots are
// off or cannot be exported (then each split reads its own snapshot).
// The holding transaction runs nothing but pg_export_snapshot, so it holds
// no locks.
func (s *Source) snapshot(ctx context.Context) (*holder, error) {
	if s.snapMode == "off" {
		return nil, nil
	}
	s.mu.Lock()
	var reuse *holder
	for _, h := range s.holders {
		if time.Since(h.created) < snapshotReuse && (reuse == nil || h.created.After(reuse.created)) {
			reuse = h
		}
	}
	s.mu.Unlock()
	if reuse != nil {
		reuse.mu.Lock()
		closed := reuse.closed
		if !closed {
			reuse.timer.Reset(s.snapHold)
		}
		reuse.mu.Unlock()
		if !closed {
			return reuse, nil
		}
	}
	conn, err := s.t.connect(ctx)
	if err != nil {
		return nil, err
	}
	var id string
	_, err = conn.Exec(ctx, "SET idle_in_transaction_session_timeout = 0")
	if err == nil {
		_, err = conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
	}
	if err == nil {
		err = conn.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&id)
	}
	if err != nil {
		conn.Close(context.Background())
		if ctx.Err() != nil || s.snapMode == "required" {
			return nil, s.t.wrap(err, "export snapshot")
		}
		// Fallback (a hot standby before PostgreSQL 10, a pooler in
		// transaction mode...): no shared snapshot.
		return nil, nil
	}
	h := &holder{id: id, src: s, conn: conn, created: time.Now()}
	h.timer = time.AfterFunc(s.snapHold, h.close)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		h.close()
		return nil, connectors.Permanent(fmt.Errorf("source %s is closed", s.t.uri))
	}
	s.holders[id] = h
	s.mu.Unlock()
	return h, nil
}

// close ends the holding transaction. Idempotent.
func (h *holder) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	h.timer.Stop()
	h.conn.Close(context.Background())
	h.src.mu.Lock()
	delete(h.src.holders, h.id)
	h.src.mu.Unlock()
}

// touch keeps a snapshot held while this process still reads its splits.
func (s *Source) touch(id string) {
	s.mu.Lock()
	h := s.holders[id]
	s.mu.Unlock()
	if h != nil {
		h.timer.Reset(s.snapHold)
	}
}

// Close releases every held snapshot. The source stays usable: later
// Splits export a new one.
func (s *Source) Close() error {
	s.mu.Lock()
	hs := make([]*holder, 0, len(s.holders))
	for _, h := range s.holders {
		hs = append(hs, h)
	}
	s.mu.Unlock()
	for _, h := range hs {
		h.close()
	}
	return nil
}

// errSnapshotGone: the exporting transaction has ended.
var errSnapshotGone = errors.New("snapshot no longer held")

// Read implements connectors.ArrowSource. It runs the split's query on its
// own connection, inside the split's snapshot when it can be imported, and
// streams the rows in batches of batch_rows: memory is bounded by one
// batch, whatever the split's size. Cancelling ctx ends the stream with
// context.Canceled.
func (s *Source) Read(ctx context.Context, sp partition.Split, cols []string) (array.RecordReader, error) {
	all, err := s.columns(ctx, nil)
	if err != nil {
		return nil, err
	}
	sel := all
	if cols != nil {
		sel = make([]column, len(cols))
		for i, name := range cols {
			found := false
			for _, c := range all {
				if c.name == name {
					sel[i], found = c, true
					break
				}
			}
			if !found {
				return nil, connectors.Permanent(fmt.Errorf("source %s: no column %q in the %s", s.t.uri, name, s.what()))
			}
		}
	}
	var list []string
	for _, c := range sel {
		e := ident(c.name)
		if c.text {
			e += "::text"
		}
		list = append(list, e)
	}
	sqlText := "SELECT " + strings.Join(list, ", ") + " FROM " + s.from()
	if len(sel) == 0 {
		sqlText = "SELECT FROM " + s.from()
	}
	if w := sp.Attrs[attrWhere]; w != "" {
		sqlText += " WHERE " + w
	}
	conn, err := s.t.connect(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (array.RecordReader, error) {
		conn.Close(context.Background())
		return nil, err
	}
	begin := "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	if _, err := conn.Exec(ctx, begin); err != nil {
		return fail(s.t.wrap(err, "begin"))
	}
	if id := sp.Attrs[attrSnapshot]; id != "" && s.snapMode != "off" {
		s.touch(id)
		if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+literal(id)); err != nil {
			if ctx.Err() != nil {
				return fail(s.t.wrap(err, "import snapshot"))
			}
			if s.snapMode == "required" {
				return fail(connectors.Permanent(fmt.Errorf("source %s: split %s: %w (snapshot=required): %s", s.t.uri, sp.ID, errSnapshotGone, s.t.scrub(err.Error()))))
			}
			// Fallback: the exporting transaction is gone; read this split
			// in its own snapshot.
			if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
				return fail(s.t.wrap(err, "rollback"))
			}
			if _, err := conn.Exec(ctx, begin); err != nil {
				return fail(s.t.wrap(err, "begin"))
			}
		}
	}
	if s.onStatement != nil {
		s.onStatement(sqlText)
	}
	rr := conn.PgConn().ExecParams(ctx, sqlText, nil, nil, nil, []int16{pgx.BinaryFormatCode})
	fds := rr.FieldDescriptions()
	if fds == nil {
		_, err := rr.Close()
		if err == nil {
			err = errors.New("no result description")
		}
		return fail(s.t.wrap(err, "read split "+sp.ID))
	}
	r := &reader{src: s, split: sp.ID, conn: conn, rr: rr, cols: sel, ctx: ctx, schema: schemaOf(sel)}
	r.Init(r.free)
	return r, nil
}

// reader streams one split. Next, RecordBatch and Err must be called from
// one goroutine; Release may be called from another once Next returned.
type reader struct {
	src    *Source
	split  string
	ctx    context.Context
	conn   *pgx.Conn
	rr     *pgconn.ResultReader
	cols   []column
	schema *arrow.Schema
	cur    arrow.RecordBatch
	err    error
	done   bool
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
	r.finish()
}

// finish closes the result and the connection (the transaction is read
// only: closing is its rollback).
func (r *reader) finish() {
	if r.conn == nil {
		return
	}
	if !r.done {
		// An unfinished result: closing the connection is faster than
		// draining it.
		r.conn.PgConn().Close(context.Background())
	} else {
		_, _ = r.rr.Close()
		r.conn.Close(context.Background())
	}
	r.conn = nil
}

// Next reads up to batch_rows rows into the next batch.
func (r *reader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.done || r.err != nil {
		return false
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return false
	}
	b := array.NewRecordBuilder(r.src.mem, r.schema)
	defer b.Release()
	b.Reserve(min(r.src.batchRows, 1024))
	n := 0
	for n < r.src.batchRows {
		if !r.rr.NextRow() {
			_, err := r.rr.Close()
			r.done = true
			if err != nil {
				r.err = r.src.t.wrap(err, "read split "+r.split)
				if cerr := r.ctx.Err(); cerr != nil {
					r.err = cerr
				}
				return false
			}
			break
		}
		vals := r.rr.Values()
		for i, v := range vals {
			fb := b.Field(i)
			if v == nil {
				fb.AppendNull()
				continue
			}
			if err := r.cols[i].dec(fb, v); err != nil {
				r.err = connectors.Permanent(fmt.Errorf("postgres %s: split %s: column %s: %w", r.src.t.host, r.split, r.cols[i].name, err))
				return false
			}
		}
		n++
		if n%1024 == 0 {
			if err := r.ctx.Err(); err != nil {
				r.err = err
				return false
			}
		}
	}
	if n == 0 {
		return false
	}
	r.cur = b.NewRecordBatch()
	return true
}
