package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
)

// CommitsTable records the runs committed into each target of a schema,
// written in the commit's own transaction.
const CommitsTable = "_liminal_commits"

// StagePrefix starts the name of every staging table.
const StagePrefix = "_liminal_stage_"

// Sink writes into a PostgreSQL table. Every partition attempt COPYs into
// its own UNLOGGED staging table next to the target
// (_liminal_stage_<run hash>_<split hash>_a<attempt>: run and split ids
// are hashed because identifiers are limited to 63 bytes); Commit
// publishes the chosen attempts in one transaction that also records the
// run id in _liminal_commits, so committing a run twice, or re-running it
// with the same id, changes nothing.
type Sink struct {
	name string
	t    *target
	mode connectors.Mode
	keys []string
}

var _ connectors.ArrowSink = (*Sink)(nil)

// OpenSink configures a sink; it connects in Prepare.
func OpenSink(_ context.Context, c connectors.SinkConfig) (connectors.Sink, error) {
	return newSink(c)
}

func newSink(c connectors.SinkConfig) (*Sink, error) {
	t, err := parseURI(c.URI, c.Secret)
	if err != nil {
		return nil, err
	}
	if t.table == "" {
		return nil, connectors.Permanent(fmt.Errorf("sink %s: needs ?table=name (a query cannot be written)", t.uri))
	}
	mode := c.Mode
	if mode == "" {
		mode = connectors.ModeError
	}
	switch mode {
	case connectors.ModeError, connectors.ModeAppend, connectors.ModeOverwrite:
	case connectors.ModeUpsert:
		if len(c.KeyColumns) == 0 {
			return nil, connectors.Permanent(fmt.Errorf("sink %s: mode upsert needs key_columns", t.uri))
		}
	default:
		return nil, connectors.Permanent(fmt.Errorf("sink %s: mode %s is not supported by postgres (want error, append, overwrite or upsert)", t.uri, mode))
	}
	if len(c.PartitionBy) > 0 {
		return nil, connectors.Permanent(fmt.Errorf("sink %s: partition_by is not supported by postgres", t.uri))
	}
	for k := range c.Options {
		return nil, connectors.Permanent(fmt.Errorf("sink %s: unknown option %q", t.uri, k))
	}
	name := c.Name
	if name == "" {
		name = t.table
	}
	return &Sink{name: name, t: t, mode: mode, keys: c.KeyColumns}, nil
}

// Describe implements connectors.Sink; the password never appears.
func (s *Sink) Describe() string {
	d := fmt.Sprintf("postgres %s (table %s, mode %s", s.t.uri, s.t.qualified(s.t.table), s.mode)
	if len(s.keys) > 0 {
		d += ", key " + strings.Join(s.keys, ", ")
	}
	return d + ")"
}

func shortHash(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])
}

// targetKey names the target in _liminal_commits.
func (s *Sink) targetKey() string {
	if s.t.schema == "" {
		return s.t.table
	}
	return s.t.schema + "." + s.t.table
}

// runPrefix starts the names of the run's staging tables.
func (s *Sink) runPrefix(run connectors.Run) string {
	return StagePrefix + shortHash(s.targetKey(), run.ID)[:12] + "_"
}

func (s *Sink) stageName(run connectors.Run, split string, attempt int) string {
	return fmt.Sprintf("%s%s_a%d", s.runPrefix(run), shortHash(split)[:12], attempt)
}

// schemaExpr is the target's schema as an SQL expression.
func (s *Sink) schemaExpr() string {
	if s.t.schema == "" {
		return "current_schema()"
	}
	return literal(s.t.schema)
}

func (s *Sink) ensureCommits(ctx context.Context, conn *pgx.Conn) error {
	q := "CREATE TABLE IF NOT EXISTS " + s.t.qualified(CommitsTable) + ` (
		target text NOT NULL, run_id text NOT NULL, mode text NOT NULL, rows bigint NOT NULL,
		committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (target, run_id))`
	_, err := conn.Exec(ctx, q)
	var pg *pgconn.PgError
	if errors.As(err, &pg) && (pg.Code == "23505" || pg.Code == "42P07") {
		err = nil // created concurrently
	}
	return s.t.wrap(err, "create "+CommitsTable)
}

// committed reports whether run was committed into the target, and its rows.
func (s *Sink) committed(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, run connectors.Run) (bool, int64, error) {
	var rows int64
	err := q.QueryRow(ctx, "SELECT rows FROM "+s.t.qualified(CommitsTable)+" WHERE target = $1 AND run_id = $2",
		s.targetKey(), run.ID).Scan(&rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, s.t.wrap(err, "read "+CommitsTable)
	}
	return true, rows, nil
}

// targetState reports whether the target exists and has rows.
func (s *Sink) targetState(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (exists, nonEmpty bool, err error) {
	var reg *string
	if err := q.QueryRow(ctx, "SELECT to_regclass($1)::text", s.t.qualified(s.t.table)).Scan(&reg); err != nil {
		return false, false, s.t.wrap(err, "look up target")
	}
	if reg == nil {
		return false, false, nil
	}
	if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+s.t.qualified(s.t.table)+")").Scan(&nonEmpty); err != nil {
		return true, false, s.t.wrap(err, "look into target")
	}
	return true, nonEmpty, nil
}

// Prepare implements connectors.Sink: it creates _liminal_commits and, in
// mode error, refuses an existing non-empty target (unless this run
// already committed it).
func (s *Sink) Prepare(ctx context.Context, run connectors.Run) error {
	conn, err := s.t.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := s.ensureCommits(ctx, conn); err != nil {
		return err
	}
	done, _, err := s.committed(ctx, conn, run)
	if err != nil || done {
		return err
	}
	if s.mode == connectors.ModeError {
		_, nonEmpty, err := s.targetState(ctx, conn)
		if err != nil {
			return err
		}
		if nonEmpty {
			return connectors.Permanent(fmt.Errorf("sink %s: table %s exists and is not empty (mode error); choose mode append, overwrite or upsert", s.t.uri, s.t.qualified(s.t.table)))
		}
	}
	return nil
}

// Writer implements connectors.ArrowSink. sc may be nil: the staging table
// is then created from the first batch's schema.
func (s *Sink) Writer(ctx context.Context, run connectors.Run, sp partition.Split, attempt int, sc *arrow.Schema) (connectors.SinkWriter, error) {
	conn, err := s.t.connect(ctx)
	if err != nil {
		return nil, err
	}
	w := &writer{sink: s, run: run, split: sp.ID, attempt: attempt, conn: conn, stage: s.stageName(run, sp.ID, attempt)}
	if sc != nil {
		if err := w.start(ctx, sc); err != nil {
			conn.Close(context.Background())
			return nil, err
		}
	}
	return w, nil
}

// createSQL is the column list of a table for an Arrow schema.
func createColumns(sc *arrow.Schema) (string, error) {
	var cols []string
	for _, f := range sc.Fields() {
		t, err := ddlType(f.Type)
		if err != nil {
			return "", fmt.Errorf("column %s: %w", f.Name, err)
		}
		cols = append(cols, ident(f.Name)+" "+t)
	}
	return strings.Join(cols, ", "), nil
}

// writer COPYs one attempt into its staging table. One COPY runs for the
// whole attempt, fed batch by batch: Write hands a batch to the COPY and
// returns once every row of it has been encoded, so the batch is never
// retained.
type writer struct {
	sink    *Sink
	run     connectors.Run
	split   string
	attempt int
	stage   string
	conn    *pgx.Conn
	schema  *arrow.Schema

	batches  chan arrow.RecordBatch
	consumed chan struct{}
	done     chan struct{}
	cancel   context.CancelFunc
	copied   int64
	copyErr  error

	finished bool
	aborted  bool
}

func (w *writer) start(ctx context.Context, sc *arrow.Schema) error {
	s := w.sink
	cols, err := createColumns(sc)
	if err != nil {
		return connectors.Permanent(fmt.Errorf("sink %s: %w", s.t.uri, err))
	}
	q := fmt.Sprintf("DROP TABLE IF EXISTS %[1]s; CREATE UNLOGGED TABLE %[1]s (%[2]s)", s.t.qualified(w.stage), cols)
	if _, err := w.conn.Exec(ctx, q); err != nil {
		return s.t.wrap(err, "create staging table")
	}
	w.schema = sc
	conv := make([]converter, len(sc.Fields()))
	names := make([]string, len(sc.Fields()))
	for i, f := range sc.Fields() {
		conv[i] = converterFor(f.Type)
		names[i] = f.Name
	}
	w.batches = make(chan arrow.RecordBatch)
	w.consumed = make(chan struct{})
	w.done = make(chan struct{})
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	src := &copySource{ctx: cctx, batches: w.batches, consumed: w.consumed, conv: conv}
	tbl := pgx.Identifier{w.stage}
	if s.t.schema != "" {
		tbl = pgx.Identifier{s.t.schema, w.stage}
	}
	go func() {
		defer close(w.done)
		w.copied, w.copyErr = w.conn.CopyFrom(cctx, tbl, names, src)
		if w.copyErr == nil {
			w.copyErr = src.err
		}
	}()
	return nil
}

// Write implements connectors.SinkWriter.
func (w *writer) Write(ctx context.Context, b arrow.RecordBatch) error {
	if w.finished {
		return errors.New("write after close")
	}
	if b.NumRows() == 0 && w.schema != nil {
		return nil
	}
	if w.schema == nil {
		if err := w.start(ctx, b.Schema()); err != nil {
			return err
		}
	}
	if !sameNames(w.schema, b.Schema()) {
		return connectors.Permanent(fmt.Errorf("sink %s: batch schema %v differs from the writer's %v", w.sink.t.uri, b.Schema(), w.schema))
	}
	if b.NumRows() == 0 {
		return nil
	}
	fail := func(err error) error {
		_ = w.Abort(context.Background())
		return err
	}
	select {
	case w.batches <- b:
	case <-w.done:
		return fail(w.sink.t.wrap(w.copyErr, "copy into staging"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	select {
	case <-w.consumed:
		return nil
	case <-w.done:
		return fail(w.sink.t.wrap(w.copyErr, "copy into staging"))
	case <-ctx.Done():
		w.cancel()
		<-w.done // the COPY drops the batch before it returns
		return fail(ctx.Err())
	}
}

func sameNames(a, b *arrow.Schema) bool {
	if len(a.Fields()) != len(b.Fields()) {
		return false
	}
	for i := range a.Fields() {
		if a.Field(i).Name != b.Field(i).Name {
			return false
		}
	}
	return true
}

// Close implements connectors.SinkWriter: it ends the COPY; the rows stay
// in staging until Commit.
func (w *writer) Close(ctx context.Context) (connectors.Manifest, error) {
	m := connectors.Manifest{SplitID: w.split, Attempt: w.attempt}
	if w.aborted {
		return m, errors.New("close after abort")
	}
	if w.finished {
		return m, errors.New("closed twice")
	}
	w.finished = true
	defer w.conn.Close(context.Background())
	if w.schema == nil {
		return m, nil // no schema, no rows: nothing staged
	}
	close(w.batches)
	select {
	case <-w.done:
	case <-ctx.Done():
		w.cancel()
		<-w.done
		_ = w.dropStage()
		return m, ctx.Err()
	}
	w.cancel()
	if w.copyErr != nil {
		_ = w.dropStage()
		return m, w.sink.t.wrap(w.copyErr, "copy into staging")
	}
	m.Rows = w.copied
	m.Files = []connectors.StagedFile{{Staged: w.sink.t.qualified(w.stage), Final: w.sink.t.qualified(w.sink.t.table), Rows: w.copied}}
	return m, nil
}

// Abort implements connectors.SinkWriter. Idempotent.
func (w *writer) Abort(ctx context.Context) error {
	if w.aborted {
		return nil
	}
	w.aborted = true
	if w.cancel != nil {
		w.cancel()
		if !w.finished {
			close(w.batches)
		}
		<-w.done
	}
	w.finished = true
	w.conn.Close(context.Background())
	if w.schema == nil {
		return nil
	}
	return w.dropStage()
}

func (w *writer) dropStage() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := w.sink.t.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "DROP TABLE IF EXISTS "+w.sink.t.qualified(w.stage))
	return w.sink.t.wrap(err, "drop staging table")
}

// copySource feeds the rows of the batches sent on batches to CopyFrom and
// reports each batch consumed once all its rows were encoded.
type copySource struct {
	ctx      context.Context
	batches  chan arrow.RecordBatch
	consumed chan struct{}
	conv     []converter
	cur      arrow.RecordBatch
	row      int
	vals     []any
	err      error
}

func (c *copySource) Next() bool {
	for {
		if c.cur != nil {
			c.row++
			if c.row < int(c.cur.NumRows()) {
				return true
			}
			c.cur = nil
			select {
			case c.consumed <- struct{}{}:
			case <-c.ctx.Done():
				c.err = c.ctx.Err()
				return false
			}
		}
		select {
		case b, ok := <-c.batches:
			if !ok {
				return false
			}
			c.cur, c.row = b, -1
		case <-c.ctx.Done():
			c.err = c.ctx.Err()
			return false
		}
	}
}

func (c *copySource) Values() ([]any, error) {
	if c.vals == nil {
		c.vals = make([]any, len(c.conv))
	}
	for i, f := range c.conv {
		col := c.cur.Column(i)
		if col.IsNull(c.row) {
			c.vals[i] = nil
			continue
		}
		v, err := f(col, c.row)
		if err != nil {
			c.err = err
			return nil, err
		}
		c.vals[i] = v
	}
	return c.vals, nil
}

func (c *copySource) Err() error { return c.err }

// converter turns a non-NULL Arrow value into a value pgx encodes into the
// column type ddlType created.
type converter func(a arrow.Array, i int) (any, error)

func converterFor(t arrow.DataType) converter {
	switch t := t.(type) {
	case *arrow.Int8Type:
		return func(a arrow.Array, i int) (any, error) { return int16(a.(*array.Int8).Value(i)), nil }
	case *arrow.Int16Type:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Int16).Value(i), nil }
	case *arrow.Int32Type:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Int32).Value(i), nil }
	case *arrow.Int64Type:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Int64).Value(i), nil }
	case *arrow.Uint8Type:
		return func(a arrow.Array, i int) (any, error) { return int16(a.(*array.Uint8).Value(i)), nil }
	case *arrow.Uint16Type:
		return func(a arrow.Array, i int) (any, error) { return int32(a.(*array.Uint16).Value(i)), nil }
	case *arrow.Uint32Type:
		return func(a arrow.Array, i int) (any, error) { return int64(a.(*array.Uint32).Value(i)), nil }
	case *arrow.Uint64Type:
		return func(a arrow.Array, i int) (any, error) {
			return pgtype.Numeric{Int: new(big.Int).SetUint64(a.(*array.Uint64).Value(i)), Valid: true}, nil
		}
	case *arrow.Float16Type:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Float16).Value(i).Float32(), nil }
	case *arrow.Float32Type:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Float32).Value(i), nil }
	case *arrow.Float64Type:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Float64).Value(i), nil }
	case *arrow.BooleanType:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Boolean).Value(i), nil }
	case *arrow.StringType:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.String).Value(i), nil }
	case *arrow.LargeStringType:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.LargeString).Value(i), nil }
	case *arrow.StringViewType:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.StringView).Value(i), nil }
	case *arrow.BinaryType:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.Binary).Value(i), nil }
	case *arrow.LargeBinaryType:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.LargeBinary).Value(i), nil }
	case *arrow.BinaryViewType:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.BinaryView).Value(i), nil }
	case *arrow.FixedSizeBinaryType:
		return func(a arrow.Array, i int) (any, error) { return a.(*array.FixedSizeBinary).Value(i), nil }
	case *arrow.Date32Type:
		return func(a arrow.Array, i int) (any, error) {
			return pgtype.Date{Time: a.(*array.Date32).Value(i).ToTime(), Valid: true}, nil
		}
	case *arrow.Date64Type:
		return func(a arrow.Array, i int) (any, error) {
			return pgtype.Date{Time: a.(*array.Date64).Value(i).ToTime(), Valid: true}, nil
		}
	case *arrow.Time32Type:
		return func(a arrow.Array, i int) (any, error) {
			d := a.(*array.Time32).Value(i).ToTime(t.Unit)
			return pgtype.Time{Microseconds: d.Sub(d.Truncate(24 * time.Hour)).Microseconds(), Valid: true}, nil
		}
	case *arrow.Time64Type:
		return func(a arrow.Array, i int) (any, error) {
			d := a.(*array.Time64).Value(i).ToTime(t.Unit)
			return pgtype.Time{Microseconds: d.Sub(d.Truncate(24 * time.Hour)).Microseconds(), Valid: true}, nil
		}
	case *arrow.TimestampType:
		tz := t.TimeZone != ""
		return func(a arrow.Array, i int) (any, error) {
			ts := a.(*array.Timestamp).Value(i).ToTime(t.Unit).UTC()
			if tz {
				return pgtype.Timestamptz{Time: ts, Valid: true}, nil
			}
			return pgtype.Timestamp{Time: ts, Valid: true}, nil
		}
	case *arrow.Decimal128Type:
		return func(a arrow.Array, i int) (any, error) {
			v := a.(*array.Decimal128).Value(i)
			return pgtype.Numeric{Int: v.BigInt(), Exp: -t.Scale, Valid: true}, nil
		}
	case *arrow.Decimal256Type:
		return func(a arrow.Array, i int) (any, error) {
			v := a.(*array.Decimal256).Value(i)
			return pgtype.Numeric{Int: v.BigInt(), Exp: -t.Scale, Valid: true}, nil
		}
	case *arrow.ListType, *arrow.LargeListType:
		elem := converterFor(t.(arrow.ListLikeType).Elem())
		return func(a arrow.Array, i int) (any, error) {
			l := a.(array.ListLike)
			lo, hi := l.ValueOffsets(i)
			vals := l.ListValues()
			out := make([]any, 0, hi-lo)
			for j := lo; j < hi; j++ {
				if vals.IsNull(int(j)) {
					out = append(out, nil)
					continue
				}
				v, err := elem(vals, int(j))
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			return out, nil
		}
	}
	return func(a arrow.Array, i int) (any, error) {
		return nil, fmt.Errorf("Arrow type %s has no PostgreSQL mapping", a.DataType())
	}
}

// stagedTables lists the run's staging tables.
func (s *Sink) stagedTables(ctx context.Context, conn *pgx.Conn, run connectors.Run) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = `+s.schemaExpr()+` AND c.relkind = 'r' AND starts_with(c.relname, $1) ORDER BY 1`, s.runPrefix(run))
	if err != nil {
		return nil, s.t.wrap(err, "list staging tables")
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return names, s.t.wrap(err, "list staging tables")
}

// dropStaged drops the run's staging tables.
func (s *Sink) dropStaged(ctx context.Context, conn *pgx.Conn, run connectors.Run) error {
	names, err := s.stagedTables(ctx, conn, run)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+s.t.qualified(n)); err != nil {
			return s.t.wrap(err, "drop staging table")
		}
	}
	return nil
}

// Abort implements connectors.Sink: it drops the run's staging tables; the
// target is untouched. Idempotent.
func (s *Sink) Abort(ctx context.Context, run connectors.Run) error {
	conn, err := s.t.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return s.dropStaged(ctx, conn, run)
}

// Commit implements connectors.Sink: one transaction moves the staged rows
// of the given manifests into the target (append: INSERT; overwrite: a new
// table renamed over the old one; upsert: INSERT ... ON CONFLICT DO
// UPDATE) and records the run in _liminal_commits. A run recorded there
// is not committed again: the result says AlreadyCommitted.
func (s *Sink) Commit(ctx context.Context, run connectors.Run, staged []connectors.Manifest) (connectors.Committed, error) {
	out := connectors.Committed{URI: s.t.uri}
	conn, err := s.t.connect(ctx)
	if err != nil {
		return out, err
	}
	defer conn.Close(context.Background())
	if err := s.ensureCommits(ctx, conn); err != nil {
		return out, err
	}
	err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{}, func(tx pgx.Tx) error {
		return s.commitTx(ctx, tx, run, staged, &out)
	})
	if err != nil {
		return out, s.t.wrap(err, "commit run "+run.ID)
	}
	// The staging of every attempt of the run goes, chosen or not.
	if err := s.dropStaged(ctx, conn, run); err != nil {
		return out, err
	}
	return out, nil
}

func (s *Sink) commitTx(ctx context.Context, tx pgx.Tx, run connectors.Run, staged []connectors.Manifest, out *connectors.Committed) error {
	tq := s.t.qualified(s.t.table)
	exec := func(q string, args ...any) error {
		_, err := tx.Exec(ctx, q, args...)
		return err
	}
	// One commit at a time per target.
	if err := exec("SELECT pg_advisory_xact_lock(hashtext($1))", "liminal:"+s.targetKey()); err != nil {
		return err
	}
	// Staged rows reach an existing table through PostgreSQL's assignment
	// casts; between timestamp and timestamptz those use the session's
	// TimeZone (the server's, the role's, or a TimeZone URI parameter).
	// The connector reads timestamptz as UTC instants and writes Arrow
	// timestamps as UTC, so the commit casts in UTC too.
	if err := exec("SET LOCAL TimeZone = 'UTC'"); err != nil {
		return err
	}
	done, rows, err := s.committed(ctx, tx, run)
	if err != nil {
		return err
	}
	if done {
		out.AlreadyCommitted, out.Rows = true, rows
		out.Files = []string{tq}
		return nil
	}
	var stages []string
	for _, m := range staged {
		for _, f := range m.Files {
			var n int64
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+f.Staged).Scan(&n); err != nil {
				return fmt.Errorf("staging of split %s attempt %d: %w", m.SplitID, m.Attempt, err)
			}
			if n != f.Rows {
				return connectors.Permanent(fmt.Errorf("staging of split %s attempt %d has %d rows, want %d (lost in a server crash?); re-run", m.SplitID, m.Attempt, n, f.Rows))
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
		return connectors.Permanent(fmt.Errorf("sink %s: table %s became non-empty during the run (mode error); nothing committed", s.t.uri, tq))
	}
	var cols []string
	if len(stages) > 0 {
		if err := tx.QueryRow(ctx, `SELECT array_agg(quote_ident(attname::text) ORDER BY attnum) FROM pg_attribute
			WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, stages[0]).Scan(&cols); err != nil {
			return err
		}
	}
	colList := strings.Join(cols, ", ")
	union := func() string {
		parts := make([]string, len(stages))
		for i, st := range stages {
			parts[i] = "SELECT " + colList + " FROM " + st
		}
		return strings.Join(parts, " UNION ALL ")
	}
	insert := func(into string) error {
		if len(stages) == 0 {
			return nil
		}
		return exec(fmt.Sprintf("INSERT INTO %s (%s) %s", into, colList, union()))
	}
	create := func(name string) error {
		if len(stages) == 0 {
			return nil
		}
		pk := ""
		if s.mode == connectors.ModeUpsert {
			keys := make([]string, len(s.keys))
			for i, k := range s.keys {
				keys[i] = ident(k)
			}
			pk = ", PRIMARY KEY (" + strings.Join(keys, ", ") + ")"
		}
		return exec(fmt.Sprintf("CREATE TABLE %s (LIKE %s%s)", name, stages[0], pk))
	}
	switch s.mode {
	case connectors.ModeError, connectors.ModeAppend:
		if !exists {
			if err := create(tq); err != nil {
				return err
			}
		}
		if err := insert(tq); err != nil {
			return err
		}
	case connectors.ModeOverwrite:
		h := shortHash(s.targetKey(), run.ID)[:12]
		fresh, old := "_liminal_new_"+h, "_liminal_old_"+h
		if exists {
			if err := exec(fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING ALL)", s.t.qualified(fresh), tq)); err != nil {
				return err
			}
		} else if len(stages) > 0 {
			if err := create(s.t.qualified(fresh)); err != nil {
				return err
			}
		} else {
			break // nothing to replace, nothing to create
		}
		if err := insert(s.t.qualified(fresh)); err != nil {
			return err
		}
		if exists {
			if err := exec(fmt.Sprintf("ALTER TABLE %s RENAME TO %s", tq, ident(old))); err != nil {
				return err
			}
		}
		if err := exec(fmt.Sprintf("ALTER TABLE %s RENAME TO %s", s.t.qualified(fresh), ident(s.t.table))); err != nil {
			return err
		}
		if exists {
			if err := exec("DROP TABLE " + s.t.qualified(old)); err != nil {
				return err
			}
		}
	case connectors.ModeUpsert:
		if !exists {
			if err := create(tq); err != nil {
				return err
			}
		}
		if len(stages) > 0 {
			keys := make([]string, len(s.keys))
			isKey := map[string]bool{}
			for i, k := range s.keys {
				keys[i] = ident(k)
				isKey[ident(k)] = true
			}
			var set []string
			for _, c := range cols {
				if !isKey[c] {
					set = append(set, c+" = EXCLUDED."+c)
				}
			}
			action := "DO NOTHING"
			if len(set) > 0 {
				action = "DO UPDATE SET " + strings.Join(set, ", ")
			}
			if err := exec(fmt.Sprintf("INSERT INTO %s (%s) %s ON CONFLICT (%s) %s", tq, colList, union(),
				strings.Join(keys, ", "), action)); err != nil {
				return err
			}
		}
	}
	out.Files = []string{tq}
	return exec("INSERT INTO "+s.t.qualified(CommitsTable)+" (target, run_id, mode, rows) VALUES ($1, $2, $3, $4)",
		s.targetKey(), run.ID, string(s.mode), out.Rows)
}

var initOnce sync.Once

func init() {
	initOnce.Do(func() {
		for _, scheme := range []string{"postgres", "postgresql"} {
			connectors.RegisterSource(scheme, OpenSource)
			connectors.RegisterSink(scheme, OpenSink)
		}
	})
}
