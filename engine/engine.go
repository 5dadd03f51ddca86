package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/marcboeker/go-duckdb"
)

// Options size the engine.
type Options struct {
	// Slots is the number of partitions that run at once (default NumCPU).
	Slots int
	// Threads is DuckDB's thread pool, shared by the slots (default
	// NumCPU). DuckDB schedules the tasks of all running partitions on it,
	// so a partition running alone gets every core.
	Threads int
	// MemoryLimit is DuckDB's memory limit for all slots together, e.g.
	// "8GB" (default: DuckDB's, 80% of RAM); beyond it DuckDB spills.
	MemoryLimit string
	// TempDir is where DuckDB spills; default the OS temp directory.
	TempDir string
}

// Engine owns one DuckDB instance with a connection per slot and one for
// planning. One instance means one buffer pool and one memory limit, and
// intermediate results that every slot can read without files.
type Engine struct {
	opts    Options
	db      *sql.DB
	free    chan *slot
	slots   []*slot
	planner *slot
	seq     atomic.Int64
	planMu  sync.Mutex // the planner connection plans one query at a time
}

type slot struct {
	id   int
	conn *sql.Conn
	// aux streams a scored job's query while conn writes its output.
	aux *sql.Conn
}

// New starts the engine's DuckDB instance.
func New(o Options) (*Engine, error) {
	if o.Slots <= 0 {
		o.Slots = runtime.NumCPU()
	}
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	c, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("start duckdb: %w", err)
	}
	e := &Engine{opts: o, db: sql.OpenDB(c), free: make(chan *slot, o.Slots)}
	settings := []string{
		fmt.Sprintf("SET threads = %d", o.Threads),
		"SET temp_directory = " + quote(o.TempDir),
		"SET enable_progress_bar = false",
		// Keep input order so that a re-run writes byte-identical files;
		// letting DuckDB reorder rows measured within noise (RESULTS.md).
		"SET preserve_insertion_order = true",
	}
	if o.MemoryLimit != "" {
		settings = append(settings, "SET memory_limit = "+quote(o.MemoryLimit))
	}
	for _, q := range settings {
		if _, err := e.db.Exec(q); err != nil {
			e.Close()
			return nil, fmt.Errorf("configure duckdb (%s): %w", q, err)
		}
	}
	for i := range o.Slots + 1 {
		conn, err := e.db.Conn(context.Background())
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("start duckdb: %w", err)
		}
		s := &slot{id: i, conn: conn}
		if i < o.Slots {
			if s.aux, err = e.db.Conn(context.Background()); err != nil {
				conn.Close()
				e.Close()
				return nil, fmt.Errorf("start duckdb: %w", err)
			}
		}
		if i == o.Slots {
			e.planner = s
			continue
		}
		e.slots = append(e.slots, s)
		e.free <- s
	}
	return e, nil
}

// Slots is the number of partitions the engine runs at once.
func (e *Engine) Slots() int { return e.opts.Slots }

// Close stops the DuckDB instance. Idempotent.
func (e *Engine) Close() error {
	var errs []error
	for _, s := range append(e.slots, e.planner) {
		if s != nil {
			errs = append(errs, s.conn.Close())
			if s.aux != nil {
				errs = append(errs, s.aux.Close())
			}
		}
	}
	if e.db != nil {
		errs = append(errs, e.db.Close())
	}
	e.slots, e.planner, e.db = nil, nil, nil
	return errors.Join(errs...)
}

// Table binds a table name of a query to data for one job: a DuckDB table
// expression (Scan) or a stream of Arrow batches from Go (Reader).
type Table struct {
	Name string
	// Scan is a DuckDB table expression, e.g. read_parquet([...]).
	Scan string
	// Reader streams batches from Go. It is scanned once and released by
	// the engine. Set Materialize when the query may scan it twice.
	Reader      array.RecordReader
	Materialize bool
}

// BatchWriter receives the result batches of a job run with Output.Writer.
// Write borrows b.
type BatchWriter interface {
	Write(ctx context.Context, b arrow.RecordBatch) error
}

// Output says where a job's result goes: exactly one field is set.
type Output struct {
	// CopyTo is the target of DuckDB's COPY ... TO (path and options).
	CopyTo string
	// Memory writes the result to a table of this name in the engine's
	// in-memory database, visible to every slot: the lossless intermediate
	// of a local run. DropTables removes it.
	Memory string
	// Writer receives the result as Arrow batches.
	Writer BatchWriter
}

// Scorer transforms a job's result in Go before it reaches the output:
// batch inference. Score returns a stream over the transformed batches of
// in, and takes ownership of in (it releases in when its own stream is
// released). The engine drains and releases the returned reader.
type Scorer interface {
	Score(ctx context.Context, in array.RecordReader) (array.RecordReader, error)
}

// Job is the work of one partition attempt.
type Job struct {
	Tables []Table
	Query  string
	// Score, when set, passes the query's result through Go code before
	// it is written to Output.
	Score  Scorer
	Output Output
}

// Result is what a job did.
type Result struct {
	Rows int64
}

// Execute runs job on a free slot, waiting for one. It cleans up every view
// and attachment it made, whatever happens.
func (e *Engine) Execute(ctx context.Context, j Job) (Result, error) {
	var s *slot
	select {
	case s = <-e.free:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	defer func() { e.free <- s }()
	if err := ctx.Err(); err != nil {
		return Result{}, err // select picks at random when both are ready
	}
	return e.run(ctx, s, j)
}

func (e *Engine) run(ctx context.Context, s *slot, j Job) (res Result, err error) {
	var cleanup []func()
	defer func() {
		if err != nil {
			err = &ExecError{Err: err}
		}
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()
	// A scored job's tables and query live on the slot's second
	// connection (temporary views are per connection); the first writes.
	qconn := s.conn
	if j.Score != nil {
		qconn = s.aux
	}
	exec := func(q string) error {
		_, err := qconn.ExecContext(ctx, q)
		return err
	}
	bg := func(q string) func() {
		return func() { _, _ = qconn.ExecContext(context.Background(), q) }
	}
	for _, t := range j.Tables {
		switch {
		case t.Reader != nil:
			name := fmt.Sprintf("__liminal_arrow_%d_%d", s.id+1, e.seq.Add(1))
			r := &stream{RecordReader: t.Reader}
			release, err := registerView(ctx, qconn, r, name)
			if err != nil {
				r.close()
				return res, fmt.Errorf("table %s: register arrow stream: %w", t.Name, err)
			}
			// DuckDB may never call the stream's release: close it ourselves
			// once the view is gone, so every batch goes back to its allocator.
			cleanup = append(cleanup, r.close, release, bg("DROP VIEW IF EXISTS "+ident(name)))
			// DuckDB pushes filters into arrow_scan and leaves them to the
			// stream's producer, which the C API stream does not apply: the
			// filters would be lost. A LIMIT fences the scan off from filter
			// pushdown (see TestArrowPath).
			//
			// DuckDB also pushes the query's projection into the scan and then
			// reads the stream's columns as if the producer had applied it,
			// which the C API stream cannot do: a query reading only some
			// columns would read the wrong ones (or crash). A condition that
			// uses every column and is always true, and that the optimizer
			// can neither fold nor push into the scan, keeps every column in
			// the scan (see TestArrowProjection).
			kind, body := "VIEW", fmt.Sprintf("SELECT * FROM %s WHERE hash(COLUMNS(*)) IS NOT NULL LIMIT %d", ident(name), int64(math.MaxInt64))
			if t.Materialize {
				kind, body = "TABLE", "SELECT * FROM "+ident(name)
			}
			if err := exec(fmt.Sprintf("CREATE OR REPLACE TEMP %s %s AS %s", kind, ident(t.Name), body)); err != nil {
				return res, fmt.Errorf("table %s: %w", t.Name, err)
			}
			cleanup = append(cleanup, bg(fmt.Sprintf("DROP %s IF EXISTS %s", kind, ident(t.Name))))
		default:
			if err := exec(fmt.Sprintf("CREATE OR REPLACE TEMP VIEW %s AS SELECT * FROM %s", ident(t.Name), t.Scan)); err != nil {
				return res, fmt.Errorf("table %s: %w", t.Name, err)
			}
			cleanup = append(cleanup, bg("DROP VIEW IF EXISTS "+ident(t.Name)))
		}
	}
	if j.Score != nil {
		// The query streams out of the slot's second connection while the
		// first writes the scored batches: memory stays bounded by the
		// batches in flight, whatever the partition's size.
		in, err := streamQuery(ctx, qconn, j.Query)
		if err != nil {
			return res, err
		}
		out, err := j.Score.Score(ctx, in)
		if err != nil {
			return res, err
		}
		name := fmt.Sprintf("__liminal_scored_%d_%d", s.id+1, e.seq.Add(1))
		r := &stream{RecordReader: out}
		release, err := registerView(ctx, s.conn, r, name)
		if err != nil {
			r.close()
			return res, fmt.Errorf("register scored stream: %w", err)
		}
		cleanup = append(cleanup, r.close, release, func() { _, _ = s.conn.ExecContext(context.Background(), "DROP VIEW IF EXISTS "+ident(name)) })
		// The scorer's errors surface through the stream; DuckDB reports
		// them as its own, so keep the original.
		defer func() {
			if serr := out.Err(); serr != nil && err != nil {
				err = serr
			}
		}()
		j.Query = "SELECT * FROM " + ident(name)
	}
	switch o := j.Output; {
	case o.CopyTo != "":
		n, err := execCount(ctx, s.conn, "COPY ("+j.Query+") TO "+o.CopyTo)
		if err != nil {
			return res, err
		}
		res.Rows = n
	case o.Memory != "":
		n, err := execCount(ctx, s.conn, fmt.Sprintf("CREATE TABLE %s AS %s", ident(o.Memory), j.Query))
		if err != nil {
			return res, err
		}
		res.Rows = n
	case o.Writer != nil:
		n, err := queryArrow(ctx, s.conn, j.Query, o.Writer)
		res.Rows = n
		if err != nil {
			return res, err
		}
	default:
		return res, errors.New("job has no output")
	}
	return res, nil
}

// DropTables removes in-memory tables written with Output.Memory.
// Missing tables are not an error.
func (e *Engine) DropTables(ctx context.Context, names ...string) error {
	var errs []error
	for _, n := range names {
		if _, err := e.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+ident(n)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TableName returns a fresh name for an in-memory intermediate table.
func (e *Engine) TableName(prefix string) string {
	return fmt.Sprintf("__liminal_%s_%d", prefix, e.seq.Add(1))
}

func withArrow(ctx context.Context, conn *sql.Conn, f func(a *duckdb.Arrow) error) error {
	return conn.Raw(func(dc any) error {
		d, ok := dc.(driver.Conn)
		if !ok {
			return errors.New("not a driver connection")
		}
		a, err := duckdb.NewArrowFromConn(d)
		if err != nil {
			return err
		}
		return f(a)
	})
}

func registerView(ctx context.Context, conn *sql.Conn, r array.RecordReader, name string) (func(), error) {
	var release func()
	// The exported C stream retains r until DuckDB releases the stream.
	err := withArrow(ctx, conn, func(a *duckdb.Arrow) error {
		var err error
		release, err = a.RegisterView(r, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return release, nil
}

// queryReader runs q and returns its result as a reader (materialized by
// go-duckdb v1.8.5 before it returns).
func queryReader(ctx context.Context, conn *sql.Conn, q string) (array.RecordReader, error) {
	var rr array.RecordReader
	err := withArrow(ctx, conn, func(a *duckdb.Arrow) error {
		var err error
		rr, err = a.QueryContext(ctx, q)
		return err
	})
	return rr, err
}

// queryArrow runs q and streams each result batch to w.
func queryArrow(ctx context.Context, conn *sql.Conn, q string, w BatchWriter) (int64, error) {
	var rows int64
	rr, err := streamQuery(ctx, conn, q)
	if err != nil {
		return 0, err
	}
	defer rr.Release()
	for rr.Next() {
		b := rr.RecordBatch()
		if err := w.Write(ctx, b); err != nil {
			return rows, err
		}
		rows += b.NumRows()
	}
	return rows, rr.Err()
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ident quotes an identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// stream hands a Go reader to DuckDB and lets the engine end it: close
// releases the reader once, after which the stream reports its end even if
// DuckDB asks for more.
type stream struct {
	array.RecordReader
	mu     sync.Mutex
	closed bool
}

func (s *stream) Next() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closed && s.RecordReader.Next()
}

func (s *stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	return s.RecordReader.Err()
}

// Retain and Release are no-ops: the engine owns the reader's lifetime.
func (s *stream) Retain()  {}
func (s *stream) Release() {}

func (s *stream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.RecordReader.Release()
	}
}

// WithConn runs f with the engine's planning connection (one caller at a
// time): for short queries outside a partition, such as data checks over
// staged output. f must not keep the connection.
func (e *Engine) WithConn(ctx context.Context, f func(*sql.Conn) error) error {
	e.planMu.Lock()
	defer e.planMu.Unlock()
	return f(e.planner.conn)
}

// ResultSchema returns the Arrow schema of q's result without running it.
func (e *Engine) ResultSchema(ctx context.Context, q string) (*arrow.Schema, error) {
	var sc *arrow.Schema
	err := e.WithConn(ctx, func(c *sql.Conn) error {
		rr, err := queryReader(ctx, c, "SELECT * FROM ("+q+") LIMIT 0")
		if err != nil {
			return err
		}
		sc = rr.Schema()
		rr.Release()
		return nil
	})
	return sc, err
}
