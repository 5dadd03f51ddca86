package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"golang.org/x/sync/semaphore"

	"github.com/liminal-data/liminal/internal/arrowref"
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
	// Sandbox, when set, confines every query to the listed directories
	// (reads, writes, globs; TempDir is added) and locks DuckDB's
	// configuration, so that submitted SQL can neither reach other files
	// nor undo the confinement (TestSandbox).
	Sandbox *Sandbox
}

// Sandbox is what a sandboxed engine may touch.
type Sandbox struct {
	// Dirs are the directories queries may read and write, recursively.
	Dirs []string
}

// Engine owns one DuckDB instance with a connection per slot and one for
// planning. One instance means one buffer pool and one memory limit, and
// intermediate results that every slot can read without files.
type Engine struct {
	opts    Options
	db      *database
	free    chan *slot
	slots   []*slot
	planner *slot
	seq     atomic.Int64
	planMu  sync.Mutex // the planner connection plans one query at a time
	// share admits jobs: a job that DuckDB runs on its own (native scans
	// into COPY or an in-memory table) takes every slot's share, a job that
	// waits on Go (Arrow tables from Go, scoring, a Go writer) takes one.
	// One DuckDB query already keeps every core busy; two native partitions
	// at once only double the writers' buffers (9.95M rows into Parquet,
	// 2 cores: 1.12-1.16 s and 533-597 MiB two at a time, 0.99-1.02 s and
	// 222-252 MiB one at a time, RESULTS.md), while Go-side jobs overlap
	// their waits.
	share *semaphore.Weighted
}

type slot struct {
	id   int
	conn *conn
	// aux streams a scored job's query while conn writes its output.
	aux *conn
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
	db, err := openDatabase()
	if err != nil {
		return nil, fmt.Errorf("start duckdb: %w", err)
	}
	e := &Engine{opts: o, db: db, free: make(chan *slot, o.Slots), share: semaphore.NewWeighted(int64(o.Slots))}
	// GLOBAL: every connection opened later has them.
	settings := []string{
		fmt.Sprintf("SET GLOBAL threads = %d", o.Threads),
		"SET GLOBAL temp_directory = " + quote(o.TempDir),
		// Keep input order so that a re-run writes byte-identical files;
		// letting DuckDB reorder rows measured within noise (RESULTS.md).
		"SET GLOBAL preserve_insertion_order = true",
		// TIMESTAMPTZ values reach Arrow with DuckDB's session time zone,
		// which defaults to the host's: pin it so output does not depend on
		// the machine (TestTimeZoneIsUTC).
		"SET GLOBAL TimeZone = 'UTC'",
	}
	if o.MemoryLimit != "" {
		settings = append(settings, "SET GLOBAL memory_limit = "+quote(o.MemoryLimit))
	}
	// Extensions are the ones linked in (parquet, json, icu, tpch, tpcds);
	// nothing is ever downloaded.
	settings = append(settings, "SET GLOBAL autoinstall_known_extensions = false",
		"SET GLOBAL allow_community_extensions = false")
	if sb := o.Sandbox; sb != nil {
		dirs := []string{quote(o.TempDir)}
		for _, d := range sb.Dirs {
			abs, err := filepath.Abs(d)
			if err != nil {
				return nil, fmt.Errorf("sandbox directory %s: %w", d, err)
			}
			dirs = append(dirs, quote(abs))
		}
		settings = append(settings, "SET GLOBAL allowed_directories = ["+strings.Join(dirs, ", ")+"]",
			"SET GLOBAL enable_external_access = false",
			"SET GLOBAL lock_configuration = true")
	}
	setup, err := db.connect()
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("start duckdb: %w", err)
	}
	defer setup.close()
	for _, q := range settings {
		if err := setup.Exec(context.Background(), q); err != nil {
			e.Close()
			return nil, fmt.Errorf("configure duckdb (%s): %w", q, err)
		}
	}
	for i := range o.Slots + 1 {
		c, err := db.connect()
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("start duckdb: %w", err)
		}
		s := &slot{id: i, conn: c}
		if i < o.Slots {
			if s.aux, err = db.connect(); err != nil {
				c.close()
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
	for _, s := range append(e.slots, e.planner) {
		if s != nil {
			s.conn.close()
			if s.aux != nil {
				s.aux.close()
			}
		}
	}
	if e.db != nil {
		e.db.close()
	}
	e.slots, e.planner, e.db = nil, nil, nil
	return nil
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

// native reports whether DuckDB runs j on its own, without waiting on Go.
func (j Job) native() bool {
	if j.Score != nil || j.Output.Writer != nil {
		return false
	}
	for _, t := range j.Tables {
		if t.Reader != nil {
			return false
		}
	}
	return true
}

// Result is what a job did.
type Result struct {
	Rows int64
}

// Execute runs job on a free slot, waiting for one. It cleans up every view
// and attachment it made, whatever happens.
func (e *Engine) Execute(ctx context.Context, j Job) (Result, error) {
	weight := int64(1)
	if j.native() {
		weight = int64(e.opts.Slots)
	}
	if err := e.share.Acquire(ctx, weight); err != nil {
		return Result{}, err
	}
	defer e.share.Release(weight)
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
	exec := func(q string) error { return qconn.Exec(ctx, q) }
	bg := func(q string) func() {
		return func() { _ = qconn.Exec(context.Background(), q) }
	}
	for _, t := range j.Tables {
		switch {
		case t.Reader != nil:
			name := fmt.Sprintf("__liminal_arrow_%d_%d", s.id+1, e.seq.Add(1))
			r := newStream(t.Reader)
			release, err := qconn.registerArrow(r, name)
			if err != nil {
				r.close()
				return res, fmt.Errorf("table %s: register arrow stream: %w", t.Name, err)
			}
			// DuckDB may never call the stream's release: the engine releases
			// it once the view is gone, then drops its own reference, so
			// every batch goes back to its allocator.
			cleanup = append(cleanup, r.close, release, bg("DROP VIEW IF EXISTS "+ident(name)))
			// DuckDB's C-API arrow_scan (1.1.3 and still 2.0) accepts the
			// query's filters and projection and leaves them to the stream's
			// producer, which a C stream cannot apply: without a fence a
			// filter is lost (TestArrowPath: every row comes back) and a query
			// reading some columns reads the wrong ones or crashes
			// (TestArrowProjection: SIGSEGV). LIMIT fences the scan off from
			// filter pushdown; an always-true condition over every column,
			// which the optimizer can neither fold nor push down, keeps
			// every column in the scan.
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
		in, err := qconn.stream(ctx, j.Query)
		if err != nil {
			return res, err
		}
		out, err := j.Score.Score(ctx, in)
		if err != nil {
			return res, err
		}
		name := fmt.Sprintf("__liminal_scored_%d_%d", s.id+1, e.seq.Add(1))
		r := newStream(out)
		release, err := s.conn.registerArrow(r, name)
		if err != nil {
			r.close()
			return res, fmt.Errorf("register scored stream: %w", err)
		}
		cleanup = append(cleanup, r.close, release, func() { _ = s.conn.Exec(context.Background(), "DROP VIEW IF EXISTS "+ident(name)) })
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
		n, err := s.conn.execCount(ctx, "COPY ("+j.Query+") TO "+o.CopyTo)
		if err != nil {
			return res, err
		}
		res.Rows = n
	case o.Memory != "":
		n, err := s.conn.execCount(ctx, fmt.Sprintf("CREATE TABLE %s AS %s", ident(o.Memory), j.Query))
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
	err := e.WithConn(ctx, func(c Conn) error {
		for _, n := range names {
			if err := c.Exec(ctx, "DROP TABLE IF EXISTS "+ident(n)); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// TableName returns a fresh name for an in-memory intermediate table.
func (e *Engine) TableName(prefix string) string {
	return fmt.Sprintf("__liminal_%s_%d", prefix, e.seq.Add(1))
}

// queryArrow runs q and streams each result batch to w.
func queryArrow(ctx context.Context, c *conn, q string, w BatchWriter) (int64, error) {
	var rows int64
	rr, err := c.stream(ctx, q)
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

// stream hands a Go reader to DuckDB with a reference count of its own:
// the engine holds one reference (dropped by close once the view is gone),
// the exported C stream another (dropped when DuckDB, or the engine after
// DuckDB, releases the stream); the last releases the reader once.
type stream struct {
	array.RecordReader
	arrowref.Count
}

func newStream(r array.RecordReader) *stream {
	s := &stream{RecordReader: r}
	s.Init(r.Release)
	return s
}

// Retain and Release are the stream's count, not the reader's.
func (s *stream) Retain()  { s.Count.Retain() }
func (s *stream) Release() { s.Count.Release() }

// close drops the engine's reference.
func (s *stream) close() { s.Count.Release() }

// WithConn runs f with the engine's planning connection (one caller at a
// time): for short queries outside a partition, such as data checks over
// staged output. f must not keep the connection.
func (e *Engine) WithConn(ctx context.Context, f func(Conn) error) error {
	e.planMu.Lock()
	defer e.planMu.Unlock()
	return f(e.planner.conn)
}

// ResultSchema returns the Arrow schema of q's result without running it.
func (e *Engine) ResultSchema(ctx context.Context, q string) (*arrow.Schema, error) {
	var sc *arrow.Schema
	err := e.WithConn(ctx, func(c Conn) error {
		rr, err := c.Query(ctx, "SELECT * FROM ("+TrimStatement(q)+"\n) LIMIT 0")
		if err != nil {
			return err
		}
		sc = rr.Schema()
		rr.Release()
		return nil
	})
	return sc, err
}
