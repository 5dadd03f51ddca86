package trino

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	trinoclient "github.com/trinodb/trino-go-client/trino" // also registers the "trino" database/sql driver

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
)

func init() {
	for _, scheme := range []string{"trino", "presto"} {
		connectors.RegisterSource(scheme, func(ctx context.Context, c connectors.SourceConfig) (connectors.Source, error) {
			return Open(ctx, c)
		})
	}
}

// DefaultBatchRows is the number of rows per Arrow batch.
const DefaultBatchRows = 8192

// Split attributes.
const (
	attrWhere = "where" // the split's predicate; absent: every row
	attrWhole = "whole" // "1": run the user's query as written
)

// config is a parsed source URI plus options.
type config struct {
	scheme      string // trino or presto
	user        string
	password    string
	host        string // host:port
	catalog     string
	schema      string
	table       string
	query       string
	partCol     string
	partitions  int
	lower       string
	upper       string
	whole       bool
	batchRows   int
	https       bool
	retry       time.Duration
	sessionProp string
	client      string // trino-go-client custom client name
}

var knownOptions = map[string]bool{
	"table": true, "query": true, "partition_column": true, "partitions": true,
	"lower_bound": true, "upper_bound": true, "pushdown": true, "batch_rows": true,
	"ssl": true, "retry_timeout": true, "session_properties": true,
}

// parseConfig reads trino://user@host:port/catalog/schema?table=T (or
// ?query=SQL) and the spec's options, which win over URI parameters.
func parseConfig(c connectors.SourceConfig) (config, error) {
	u, err := url.Parse(c.URI)
	if err != nil {
		return config{}, fmt.Errorf("parse URI %s: %w", connectors.Redact(c.URI), scrub(err, c.Secret))
	}
	cfg := config{scheme: strings.ToLower(u.Scheme), host: u.Host, batchRows: DefaultBatchRows, retry: 30 * time.Second, password: c.Secret}
	if cfg.scheme != "trino" && cfg.scheme != "presto" {
		return config{}, fmt.Errorf("URI %s: scheme must be trino or presto", connectors.Redact(c.URI))
	}
	if cfg.host == "" {
		return config{}, fmt.Errorf("URI %s: no host", connectors.Redact(c.URI))
	}
	if u.Port() == "" {
		cfg.host += ":8080"
	}
	if u.User != nil {
		cfg.user = u.User.Username()
		if p, ok := u.User.Password(); ok && cfg.password == "" {
			cfg.password = p
		}
	}
	if cfg.user == "" {
		cfg.user = "liminal"
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) > 2 {
		return config{}, fmt.Errorf("URI %s: path must be /catalog/schema", connectors.Redact(c.URI))
	}
	if len(parts) > 0 {
		cfg.catalog = parts[0]
	}
	if len(parts) > 1 {
		cfg.schema = parts[1]
	}
	opts := map[string]string{}
	for k, v := range u.Query() {
		opts[k] = v[len(v)-1]
	}
	for k, v := range c.Options {
		opts[k] = v
	}
	var unknown []string
	for k := range opts {
		if !knownOptions[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return config{}, fmt.Errorf("unknown option(s) %s (want table, query, partition_column, partitions, lower_bound, upper_bound, pushdown, batch_rows, ssl, retry_timeout, session_properties)", strings.Join(unknown, ", "))
	}
	cfg.table, cfg.query = opts["table"], strings.TrimSpace(opts["query"])
	cfg.query = strings.TrimRight(cfg.query, "; \t\n")
	if (cfg.table == "") == (cfg.query == "") {
		return config{}, fmt.Errorf("give exactly one of the table and query options")
	}
	cfg.partCol, cfg.lower, cfg.upper = opts["partition_column"], opts["lower_bound"], opts["upper_bound"]
	if n := opts["partitions"]; n != "" {
		if cfg.partitions, err = strconv.Atoi(n); err != nil || cfg.partitions < 1 {
			return config{}, fmt.Errorf("partitions %q: want a positive integer", n)
		}
	}
	switch opts["pushdown"] {
	case "", "ranges":
	case "whole":
		cfg.whole = true
	default:
		return config{}, fmt.Errorf("pushdown %q: want whole or ranges", opts["pushdown"])
	}
	if cfg.whole && cfg.partCol != "" {
		return config{}, fmt.Errorf("pushdown=whole runs one query; it cannot be split on partition_column")
	}
	if (cfg.lower == "") != (cfg.upper == "") {
		return config{}, fmt.Errorf("give both lower_bound and upper_bound, or neither")
	}
	if cfg.lower != "" && cfg.partCol == "" {
		return config{}, fmt.Errorf("lower_bound and upper_bound need partition_column")
	}
	if n := opts["batch_rows"]; n != "" {
		if cfg.batchRows, err = strconv.Atoi(n); err != nil || cfg.batchRows < 1 {
			return config{}, fmt.Errorf("batch_rows %q: want a positive integer", n)
		}
	}
	if s := opts["ssl"]; s != "" {
		if cfg.https, err = strconv.ParseBool(s); err != nil {
			return config{}, fmt.Errorf("ssl %q: want true or false", s)
		}
	}
	if cfg.password != "" {
		if opts["ssl"] != "" && !cfg.https {
			return config{}, fmt.Errorf("a password is only sent over HTTPS; remove ssl=false")
		}
		cfg.https = true
	}
	if s := opts["retry_timeout"]; s != "" {
		if cfg.retry, err = time.ParseDuration(s); err != nil || cfg.retry <= 0 {
			return config{}, fmt.Errorf("retry_timeout %q: want a positive duration such as 30s", s)
		}
	}
	cfg.sessionProp = opts["session_properties"]
	return cfg, nil
}

// dsn is trino-go-client's data source name; it holds the password.
func (c config) dsn() string {
	u := url.URL{Scheme: "http", Host: c.host}
	if c.https {
		u.Scheme = "https"
	}
	if c.password != "" {
		u.User = url.UserPassword(c.user, c.password)
	} else {
		u.User = url.User(c.user)
	}
	q := url.Values{}
	q.Set("source", "liminal")
	if c.catalog != "" {
		q.Set("catalog", c.catalog)
	}
	if c.schema != "" {
		q.Set("schema", c.schema)
	}
	q.Set("request_retry_timeout", c.retry.String())
	if c.sessionProp != "" {
		q.Set("session_properties", c.sessionProp)
	}
	switch {
	case c.client != "":
		q.Set("custom_client", c.client)
	case c.scheme == "presto":
		q.Set("custom_client", prestoClient)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// relation is the SQL the source reads: a quoted table name or the
// user's query in parentheses.
func (c config) relation() string {
	if c.query != "" {
		return "(" + c.query + ")"
	}
	return tableName(c.table)
}

// tableName quotes each dotted part of a table name unless the user
// already quoted it.
func tableName(t string) string {
	if strings.Contains(t, `"`) {
		return t
	}
	parts := strings.Split(t, ".")
	for i, p := range parts {
		parts[i] = quoteIdent(p)
	}
	return strings.Join(parts, ".")
}

// Source reads a Trino or PrestoDB table or query as Arrow record batches.
// It is safe for concurrent use.
type Source struct {
	name      string
	cfg       config
	db        *sql.DB
	mem       memory.Allocator
	transport *http.Transport

	mu     sync.Mutex
	schema *arrow.Schema
	types  []sqlType
}

var _ connectors.ArrowSource = (*Source)(nil)

// Option configures a Source.
type Option func(*Source)

// WithAllocator makes the source build its batches with mem (default
// memory.DefaultAllocator).
func WithAllocator(mem memory.Allocator) Option { return func(s *Source) { s.mem = mem } }

// Open opens a source for c.URI (trino:// or presto://). It does not
// contact the server.
func Open(_ context.Context, c connectors.SourceConfig, opts ...Option) (*Source, error) {
	cfg, err := parseConfig(c)
	if err != nil {
		return nil, connectors.Permanent(fmt.Errorf("source %s: %w", c.Name, err))
	}
	client, transport, err := registerClient(cfg.scheme == "presto")
	if err != nil {
		return nil, connectors.Permanent(fmt.Errorf("source %s: %w", c.Name, err))
	}
	cfg.client = client
	db, err := sql.Open("trino", cfg.dsn())
	if err != nil {
		trinoclient.DeregisterCustomClient(client)
		return nil, connectors.Permanent(fmt.Errorf("source %s: %w", c.Name, scrub(err, cfg.password)))
	}
	s := &Source{name: c.Name, cfg: cfg, db: db, mem: memory.DefaultAllocator, transport: transport}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Close closes idle connections. Readers still open keep working.
func (s *Source) Close() error {
	err := s.db.Close()
	s.transport.CloseIdleConnections()
	trinoclient.DeregisterCustomClient(s.cfg.client)
	return err
}

// Describe implements connectors.Source; it never shows the password.
func (s *Source) Describe() string {
	what := "table=" + s.cfg.table
	if s.cfg.query != "" {
		q := strings.Join(strings.Fields(s.cfg.query), " ")
		if len(q) > 80 {
			q = q[:77] + "..."
		}
		what = "query=" + strconv.Quote(q)
	}
	d := fmt.Sprintf("%s://%s@%s/%s/%s %s", s.cfg.scheme, s.cfg.user, s.cfg.host, s.cfg.catalog, s.cfg.schema, what)
	if s.cfg.partCol != "" {
		d += " partition_column=" + s.cfg.partCol
	}
	if s.cfg.whole {
		d += " pushdown=whole"
	}
	return d
}

// Schema implements connectors.Source: DESCRIBE OUTPUT of the prepared
// relation gives each column's type as the server prints it, which maps
// to Arrow as doc.go describes.
func (s *Source) Schema(ctx context.Context) (*arrow.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.schema != nil {
		return s.schema, nil
	}
	names, types, err := s.describe(ctx)
	if err != nil {
		return nil, err
	}
	fields := make([]arrow.Field, len(names))
	seen := map[string]bool{}
	for i, n := range names {
		if seen[n] {
			return nil, connectors.Permanent(fmt.Errorf("source %s: duplicate column name %q; alias the columns in the query", s.name, n))
		}
		seen[n] = true
		fields[i] = arrow.Field{Name: n, Type: arrowType(types[i]), Nullable: true,
			Metadata: arrow.NewMetadata([]string{"trino.type"}, []string{types[i].String()})}
	}
	s.schema, s.types = arrow.NewSchema(fields, nil), types
	return s.schema, nil
}

func (s *Source) describe(ctx context.Context) ([]string, []sqlType, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, nil, classify(err, "source "+s.name+": connect", s.cfg.password)
	}
	defer conn.Close()
	const stmt = "liminal_describe"
	if _, err := conn.ExecContext(ctx, "PREPARE "+stmt+" FROM SELECT * FROM "+s.cfg.relation()+" liminal_t"); err != nil {
		return nil, nil, classify(err, "source "+s.name+": describe", s.cfg.password)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DEALLOCATE PREPARE "+stmt) //nolint:errcheck // best effort
	rows, err := conn.QueryContext(ctx, "DESCRIBE OUTPUT "+stmt)
	if err != nil {
		return nil, nil, classify(err, "source "+s.name+": describe", s.cfg.password)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, classify(err, "source "+s.name+": describe", s.cfg.password)
	}
	nameAt, typeAt := -1, -1
	for i, c := range cols {
		switch strings.ToLower(c) {
		case "column name":
			nameAt = i
		case "type":
			typeAt = i
		}
	}
	if nameAt < 0 || typeAt < 0 {
		return nil, nil, connectors.Permanent(fmt.Errorf("source %s: DESCRIBE OUTPUT has no name or type column (got %v)", s.name, cols))
	}
	var names []string
	var types []sqlType
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, classify(err, "source "+s.name+": describe", s.cfg.password)
		}
		name, _ := vals[nameAt].(string)
		typ, _ := vals[typeAt].(string)
		t, err := parseType(typ)
		if err != nil {
			return nil, nil, connectors.Permanent(fmt.Errorf("source %s: column %s: %w", s.name, name, err))
		}
		names = append(names, name)
		types = append(types, t)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, classify(err, "source "+s.name+": describe", s.cfg.password)
	}
	if len(names) == 0 {
		return nil, nil, connectors.Permanent(fmt.Errorf("source %s: the relation has no columns", s.name))
	}
	return names, types, nil
}

// Splits implements connectors.Source. With partition_column, the source
// is cut into ranges of that column (NULLs go to the first split); with
// pushdown=whole, strategy none or no partition column it is one split.
func (s *Source) Splits(ctx context.Context, o partition.Options) ([]partition.Split, error) {
	one := func(attrs map[string]string, loc string) []partition.Split {
		return []partition.Split{{ID: s.name + "-00000", Source: s.name, Locator: loc, Attrs: attrs}}
	}
	switch {
	case s.cfg.whole:
		return one(map[string]string{attrWhole: "1"}, "the whole query, pushed down"), nil
	case s.cfg.partCol == "" || o.By == partition.None:
		return one(nil, "all rows"), nil
	}
	sc, err := s.Schema(ctx)
	if err != nil {
		return nil, err
	}
	idx := sc.FieldIndices(s.cfg.partCol)
	if len(idx) == 0 {
		return nil, connectors.Permanent(fmt.Errorf("source %s: partition_column %q is not a column (have %s)", s.name, s.cfg.partCol, columnList(sc)))
	}
	col := s.cfg.partCol
	kind, err := kindOf(s.types[idx[0]])
	if err != nil {
		return nil, connectors.Permanent(fmt.Errorf("source %s: partition_column %s: %w", s.name, col, err))
	}
	st, err := s.stats(ctx, kind, o)
	if err != nil {
		return nil, err
	}
	n := s.cfg.partitions
	if n == 0 {
		target := o.TargetRows
		if target <= 0 {
			slots := int64(max(1, o.Slots))
			target = min(max((st.rows+2*slots-1)/(2*slots), partition.MinAutoRows), partition.MaxAutoRows)
		}
		n = int(max(1, (st.rows+target-1)/target))
	}
	if o.MaxPartitions > 0 {
		n = min(n, o.MaxPartitions)
	}
	if !st.ok || n <= 1 {
		return one(nil, "all rows"), nil
	}
	bounds := kind.bounds(st.lo, st.hi, n)
	if len(bounds) == 0 {
		return one(nil, "all rows"), nil
	}
	qc := quoteIdent(col)
	var out []partition.Split
	for i := 0; i <= len(bounds); i++ {
		var where, loc string
		switch {
		case i == 0:
			where = fmt.Sprintf("(%s < %s OR %s IS NULL)", qc, bounds[0].sql, qc)
			loc = fmt.Sprintf("%s < %s or NULL", col, bounds[0].text)
		case i == len(bounds):
			where = fmt.Sprintf("%s >= %s", qc, bounds[i-1].sql)
			loc = fmt.Sprintf("%s >= %s", col, bounds[i-1].text)
		default:
			where = fmt.Sprintf("%s >= %s AND %s < %s", qc, bounds[i-1].sql, qc, bounds[i].sql)
			loc = fmt.Sprintf("%s in [%s, %s)", col, bounds[i-1].text, bounds[i].text)
		}
		out = append(out, partition.Split{
			ID: fmt.Sprintf("%s-%05d", s.name, i), Source: s.name, Locator: loc,
			Rows: st.rows / int64(len(bounds)+1), Attrs: map[string]string{attrWhere: where},
		})
	}
	return out, nil
}

func columnList(sc *arrow.Schema) string {
	names := make([]string, sc.NumFields())
	for i, f := range sc.Fields() {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

type colStats struct {
	lo, hi any
	rows   int64
	ok     bool // lo and hi known (not an empty table)
}

// stats finds the partition column's bounds and the row count in one
// query; given bounds and a partition count need no query at all.
func (s *Source) stats(ctx context.Context, k rangeKind, o partition.Options) (colStats, error) {
	var st colStats
	needCount := s.cfg.partitions == 0
	if s.cfg.lower != "" {
		lo, err := k.parse(s.cfg.lower)
		if err != nil {
			return st, connectors.Permanent(fmt.Errorf("source %s: lower_bound: %w", s.name, err))
		}
		hi, err := k.parse(s.cfg.upper)
		if err != nil {
			return st, connectors.Permanent(fmt.Errorf("source %s: upper_bound: %w", s.name, err))
		}
		st.lo, st.hi, st.ok = lo, hi, true
		if !needCount {
			return st, nil
		}
	}
	qc := quoteIdent(s.cfg.partCol)
	q := fmt.Sprintf("SELECT min(%s), max(%s), count(*) FROM %s liminal_t", qc, qc, s.cfg.relation())
	var lo, hi any
	if err := s.db.QueryRowContext(ctx, q).Scan(&lo, &hi, &st.rows); err != nil {
		return st, classify(err, "source "+s.name+": bounds of "+s.cfg.partCol, s.cfg.password)
	}
	if st.ok {
		return st, nil
	}
	if lo == nil || hi == nil {
		return st, nil
	}
	var err error
	if st.lo, err = k.value(lo); err != nil {
		return st, connectors.Permanent(fmt.Errorf("source %s: min(%s): %w", s.name, s.cfg.partCol, err))
	}
	if st.hi, err = k.value(hi); err != nil {
		return st, connectors.Permanent(fmt.Errorf("source %s: max(%s): %w", s.name, s.cfg.partCol, err))
	}
	st.ok = true
	return st, nil
}

// Read implements connectors.ArrowSource. It sends one query selecting
// only cols (nil: every column) of the split's rows and streams the result
// as it arrives, DefaultBatchRows (batch_rows) rows per batch. Cancelling
// ctx or releasing the reader before the end cancels the query on the
// server.
func (s *Source) Read(ctx context.Context, sp partition.Split, cols []string) (array.RecordReader, error) {
	sc, err := s.Schema(ctx)
	if err != nil {
		return nil, err
	}
	fields := sc.Fields()
	types := s.types
	sel := "*"
	if cols != nil {
		fields = make([]arrow.Field, len(cols))
		types = make([]sqlType, len(cols))
		quoted := make([]string, len(cols))
		for i, c := range cols {
			idx := sc.FieldIndices(c)
			if len(idx) == 0 {
				return nil, connectors.Permanent(fmt.Errorf("source %s: no column %q (have %s)", s.name, c, columnList(sc)))
			}
			fields[i], types[i], quoted[i] = sc.Field(idx[0]), s.types[idx[0]], quoteIdent(c)
		}
		sel = strings.Join(quoted, ", ")
		if len(cols) == 0 {
			sel = "1 AS liminal_dummy" // zero columns: rows still count
		}
	}
	q := s.readSQL(sp, sel, cols == nil)
	// The query's own context outlives ctx so that a cancelled read can
	// still cancel the query on the server (see newReader).
	qctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel) // a cancel while submitting
	rows, err := s.db.QueryContext(qctx, q)
	stop()
	if err == nil && ctx.Err() != nil {
		rows.Close()
		err = ctx.Err()
	}
	if err != nil {
		cancel()
		return nil, classify(err, "source "+s.name+": split "+sp.ID, s.cfg.password)
	}
	got, err := rows.Columns()
	if err != nil {
		rows.Close()
		cancel()
		return nil, classify(err, "source "+s.name+": split "+sp.ID, s.cfg.password)
	}
	if want := max(len(fields), 1); len(got) != want && !(len(fields) == 0 && len(got) == 1) {
		rows.Close()
		cancel()
		return nil, connectors.Permanent(fmt.Errorf("source %s: split %s: the query returned %d columns, the schema has %d", s.name, sp.ID, len(got), len(fields)))
	}
	return newReader(ctx, s.transport, s.mem, arrow.NewSchema(fields, nil), types, rows, cancel, s.cfg.batchRows, len(got),
		func(err error) error { return classify(err, "source "+s.name+": split "+sp.ID, s.cfg.password) }), nil
}

// readSQL is the statement one split runs.
func (s *Source) readSQL(sp partition.Split, sel string, all bool) string {
	if sp.Attrs[attrWhole] == "1" && s.cfg.query != "" && all {
		return s.cfg.query // pushdown=whole: the user's query as written
	}
	q := "SELECT " + sel + " FROM " + s.cfg.relation() + " liminal_t"
	if w := sp.Attrs[attrWhere]; w != "" {
		q += " WHERE " + w
	}
	return q
}
