package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	goduckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
)

// CommitsTable records the runs committed into each target of the file.
const CommitsTable = "_liminal_commits"

// StagePrefix starts the name of every staging table.
const StagePrefix = "_liminal_stage_"

// Sink writes a table of a DuckDB database file. Each partition attempt
// inserts into its own staging table inside the file
// (_liminal_stage_<run hash>_<split hash>_a<attempt>); Commit moves the
// chosen attempts into the target in one transaction that also records the
// run in _liminal_commits (append or overwrite). DuckDB allows one writing
// process per file: the file is opened for writing only while a sink
// operation runs.
type Sink struct {
	name string
	l    *location
	mode connectors.Mode
}

var _ connectors.ArrowSink = (*Sink)(nil)

// OpenSink configures a sink.
func OpenSink(_ context.Context, c connectors.SinkConfig) (connectors.Sink, error) {
	return newSink(c)
}

func newSink(c connectors.SinkConfig) (*Sink, error) {
	l, err := parseURI(c.URI, c.BaseDir)
	if err != nil {
		return nil, err
	}
	mode := c.Mode
	if mode == "" {
		mode = connectors.ModeError
	}
	switch mode {
	case connectors.ModeError, connectors.ModeAppend, connectors.ModeOverwrite:
	default:
		return nil, connectors.Permanent(fmt.Errorf("sink %s: mode %s is not supported by duckdb (want error, append or overwrite)", c.URI, mode))
	}
	if len(c.PartitionBy) > 0 || len(c.Options) > 0 {
		return nil, connectors.Permanent(fmt.Errorf("sink %s: partition_by and options are not supported by duckdb", c.URI))
	}
	name := c.Name
	if name == "" {
		name = l.table
	}
	return &Sink{name: name, l: l, mode: mode}, nil
}

// Describe implements connectors.Sink.
func (s *Sink) Describe() string {
	return fmt.Sprintf("duckdb %s (table %s, mode %s)", s.l.path, s.l.qualified(s.l.table), s.mode)
}

func (s *Sink) targetKey() string { return s.l.schema + "." + s.l.table }

func (s *Sink) runPrefix(run connectors.Run) string {
	return StagePrefix + shortHash(s.targetKey(), run.ID) + "_"
}

func (s *Sink) conn(ctx context.Context) (*sql.Conn, func(), error) {
	db, release, err := acquire(s.l.path, false)
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

func (s *Sink) wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, connectors.ErrPermanent) || errors.Is(err, connectors.ErrTransient) {
		return err
	}
	return classify(fmt.Errorf("duckdb %s: %s: %w", s.l.path, what, err))
}

type queryer interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func (s *Sink) committed(ctx context.Context, q queryer, run connectors.Run) (bool, int64, error) {
	var rows int64
	err := q.QueryRowContext(ctx, "SELECT rows FROM "+s.l.qualified(CommitsTable)+" WHERE target = ? AND run_id = ?", s.targetKey(), run.ID).Scan(&rows)
	if errors.Is(err, sql.ErrNoRows) {
		return false, 0, nil
	}
	return err == nil, rows, s.wrap(err, "read "+CommitsTable)
}

func (s *Sink) targetState(ctx context.Context, q queryer) (exists, nonEmpty bool, err error) {
	var n int
	schema := s.l.schema
	if schema == "" {
		schema = "main"
	}
	if err := q.QueryRowContext(ctx, "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? AND database_name = '"+catalog+"'",
		schema, s.l.table).Scan(&n); err != nil {
		return false, false, s.wrap(err, "look up target")
	}
	if n == 0 {
		return false, false, nil
	}
	err = q.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM "+s.l.qualified(s.l.table)+")").Scan(&nonEmpty)
	return true, nonEmpty, s.wrap(err, "look into target")
}

// Prepare implements connectors.Sink.
func (s *Sink) Prepare(ctx context.Context, run connectors.Run) error {
	c, done, err := s.conn(ctx)
	if err != nil {
		return err
	}
	defer done()
	if _, err := c.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+s.l.qualified(CommitsTable)+
		" (target VARCHAR, run_id VARCHAR, mode VARCHAR, rows BIGINT, committed_at TIMESTAMPTZ DEFAULT current_timestamp, PRIMARY KEY (target, run_id))"); err != nil {
		return s.wrap(err, "create "+CommitsTable)
	}
	ok, _, err := s.committed(ctx, c, run)
	if err != nil || ok {
		return err
	}
	if s.mode == connectors.ModeError {
		_, nonEmpty, err := s.targetState(ctx, c)
		if err != nil {
			return err
		}
		if nonEmpty {
			return connectors.Permanent(fmt.Errorf("sink %s: table %s exists and is not empty (mode error); choose mode append or overwrite", s.l.uri, s.l.table))
		}
	}
	return nil
}

var viewSeq atomic.Int64

// Writer implements connectors.ArrowSink; sc may be nil (the staging table
// is then created from the first batch).
func (s *Sink) Writer(ctx context.Context, run connectors.Run, sp partition.Split, attempt int, sc *arrow.Schema) (connectors.SinkWriter, error) {
	c, done, err := s.conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &writer{sink: s, split: sp.ID, attempt: attempt, conn: c, done: done,
		stage: fmt.Sprintf("%s%s_a%d", s.runPrefix(run), shortHash(sp.ID), attempt)}
	if sc != nil {
		empty, _ := array.NewRecordReader(sc, nil)
		err := w.insert(ctx, empty, true)
		empty.Release()
		if err != nil {
			done()
			return nil, err
		}
	}
	return w, nil
}

type writer struct {
	sink    *Sink
	split   string
	attempt int
	stage   string
	conn    *sql.Conn
	done    func()
	schema  *arrow.Schema
	rows    int64
	closed  bool
}

// insert moves the batches of r into the staging table through an Arrow
// view; create makes the table first.
func (w *writer) insert(ctx context.Context, r array.RecordReader, create bool) error {
	view := fmt.Sprintf("__liminal_in_%d", viewSeq.Add(1))
	var release func()
	err := withArrow(w.conn, func(a *goduckdb.Arrow) error {
		var err error
		release, err = a.RegisterView(r, view)
		return err
	})
	if err != nil {
		return w.sink.wrap(err, "register batch")
	}
	defer func() {
		release()
		_, _ = w.conn.ExecContext(context.Background(), "DROP VIEW IF EXISTS "+ident(view))
	}()
	st := w.sink.l.qualified(w.stage)
	if create {
		q := fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s AS SELECT * FROM %s LIMIT 0", st, st, ident(view))
		if _, err := w.conn.ExecContext(ctx, q); err != nil {
			return w.sink.wrap(err, "create staging table")
		}
		w.schema = r.Schema()
		return nil
	}
	res, err := w.conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s SELECT * FROM %s", st, ident(view)))
	if err != nil {
		return w.sink.wrap(err, "insert into staging")
	}
	n, _ := res.RowsAffected()
	w.rows += n
	return nil
}

// Write implements connectors.SinkWriter; b is borrowed.
func (w *writer) Write(ctx context.Context, b arrow.RecordBatch) error {
	if w.closed {
		return errors.New("write after close")
	}
	if w.schema == nil {
		empty, _ := array.NewRecordReader(b.Schema(), nil)
		err := w.insert(ctx, empty, true)
		empty.Release()
		if err != nil {
			return err
		}
	}
	if b.NumRows() == 0 {
		return nil
	}
	r, err := array.NewRecordReader(b.Schema(), []arrow.RecordBatch{b})
	if err != nil {
		return connectors.Permanent(err)
	}
	defer r.Release()
	return w.insert(ctx, r, false)
}

// Close implements connectors.SinkWriter.
func (w *writer) Close(ctx context.Context) (connectors.Manifest, error) {
	m := connectors.Manifest{SplitID: w.split, Attempt: w.attempt, Rows: w.rows}
	if w.closed {
		return m, errors.New("closed twice")
	}
	w.closed = true
	w.done()
	if w.schema != nil {
		st := w.sink.l.qualified(w.stage)
		m.Files = []connectors.StagedFile{{Staged: st, Final: w.sink.l.qualified(w.sink.l.table), Rows: w.rows}}
	}
	return m, nil
}

// Abort implements connectors.SinkWriter. Idempotent.
func (w *writer) Abort(ctx context.Context) error {
	if !w.closed {
		w.closed = true
		w.done()
	}
	if w.schema == nil {
		return nil
	}
	c, done, err := w.sink.conn(context.Background())
	if err != nil {
		return err
	}
	defer done()
	_, err = c.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+w.sink.l.qualified(w.stage))
	return w.sink.wrap(err, "drop staging table")
}

func (s *Sink) dropStaged(ctx context.Context, c *sql.Conn, run connectors.Run) error {
	rows, err := c.QueryContext(ctx, "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = '"+catalog+"' AND starts_with(table_name, ?)", s.runPrefix(run))
	if err != nil {
		return s.wrap(err, "list staging tables")
	}
	var names []string
	for rows.Next() {
		var sch, t string
		if err := rows.Scan(&sch, &t); err != nil {
			rows.Close()
			return s.wrap(err, "list staging tables")
		}
		names = append(names, ident(catalog)+"."+ident(sch)+"."+ident(t))
	}
	rows.Close()
	for _, n := range names {
		if _, err := c.ExecContext(ctx, "DROP TABLE IF EXISTS "+n); err != nil {
			return s.wrap(err, "drop staging table")
		}
	}
	return nil
}

// Abort implements connectors.Sink. Idempotent.
func (s *Sink) Abort(ctx context.Context, run connectors.Run) error {
	c, done, err := s.conn(ctx)
	if err != nil {
		return err
	}
	defer done()
	return s.dropStaged(ctx, c, run)
}

// Commit implements connectors.Sink: one transaction inserts the staged
// rows (overwrite deletes the target's rows first) and records the run.
func (s *Sink) Commit(ctx context.Context, run connectors.Run, staged []connectors.Manifest) (connectors.Committed, error) {
	out := connectors.Committed{URI: s.l.uri, Files: []string{s.l.qualified(s.l.table)}}
	c, done, err := s.conn(ctx)
	if err != nil {
		return out, err
	}
	defer done()
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return out, s.wrap(err, "begin")
	}
	err = s.commitTx(ctx, tx, run, staged, &out)
	if err == nil {
		err = s.wrap(tx.Commit(), "commit")
	} else {
		_ = tx.Rollback()
	}
	if err != nil {
		return out, err
	}
	return out, s.dropStaged(ctx, c, run)
}

func (s *Sink) commitTx(ctx context.Context, tx *sql.Tx, run connectors.Run, staged []connectors.Manifest, out *connectors.Committed) error {
	ok, rows, err := s.committed(ctx, tx, run)
	if err != nil {
		return err
	}
	if ok {
		out.AlreadyCommitted, out.Rows = true, rows
		return nil
	}
	var stages []string
	for _, m := range staged {
		for _, f := range m.Files {
			var n int64
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+f.Staged).Scan(&n); err != nil {
				return s.wrap(err, fmt.Sprintf("staging of split %s", m.SplitID))
			}
			if n != f.Rows {
				return connectors.Permanent(fmt.Errorf("sink %s: staging of split %s attempt %d has %d rows, want %d", s.l.uri, m.SplitID, m.Attempt, n, f.Rows))
			}
			stages = append(stages, f.Staged)
		}
		out.Rows += m.Rows
	}
	exists, nonEmpty, err := s.targetState(ctx, tx)
	if err != nil {
		return err
	}
	if s.mode == connectors.ModeError && nonEmpty {
		return connectors.Permanent(fmt.Errorf("sink %s: table %s became non-empty during the run (mode error); nothing committed", s.l.uri, s.l.table))
	}
	tq := s.l.qualified(s.l.table)
	exec := func(q string, args ...any) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return s.wrap(err, "commit")
	}
	if !exists && len(stages) > 0 {
		if err := exec(fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s LIMIT 0", tq, stages[0])); err != nil {
			return err
		}
	}
	if exists && s.mode == connectors.ModeOverwrite {
		if err := exec("DELETE FROM " + tq); err != nil {
			return err
		}
	}
	for _, st := range stages {
		if err := exec(fmt.Sprintf("INSERT INTO %s BY NAME SELECT * FROM %s", tq, st)); err != nil {
			return err
		}
	}
	return exec("INSERT INTO "+s.l.qualified(CommitsTable)+" (target, run_id, mode, rows) VALUES (?, ?, ?, ?)",
		s.targetKey(), run.ID, string(s.mode), out.Rows)
}

// Close releases nothing: files are opened per operation. It exists so
// that callers may treat sources and sinks alike.
func (s *Source) Close() error { return nil }
