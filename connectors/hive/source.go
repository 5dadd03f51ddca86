package hive

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/beltran/gohive/hiveserver"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/internal/arrowref"
	"github.com/liminal-data/liminal/partition"
)

func init() {
	connectors.RegisterSource("hive", OpenSource)
}

// DefaultFetchSize is the number of rows per fetch and per record batch.
const DefaultFetchSize = 10_000

// config is a parsed hive:// URI with its options.
type config struct {
	host, user, password, db string
	port                     int
	table, query             string
	auth                     string
	partitionColumn          string
	fetchSize                int64
	connectTimeout           time.Duration
	socketTimeout            time.Duration
}

// parseConfig reads hive://[user@]host[:port][/db]?table=T|query=SQL with
// options auth (NOSASL, NONE, LDAP), partition_column, fetch_size,
// connect_timeout and socket_timeout; options may also come from the
// spec's options map, which wins over the URI. The password comes only
// from secret.
func parseConfig(uri string, opts map[string]string, secret string) (*config, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("bad URI: %v", errors.Unwrap(err))
	}
	if u.Scheme != "hive" {
		return nil, fmt.Errorf("bad URI: scheme %q, want hive", u.Scheme)
	}
	if _, has := u.User.Password(); has {
		return nil, fmt.Errorf("bad URI: put the password in secret_env or secret_file, not in the URI")
	}
	c := &config{host: u.Hostname(), port: 10000, user: u.User.Username(), password: secret, db: strings.Trim(u.Path, "/"),
		auth: "NOSASL", fetchSize: DefaultFetchSize, connectTimeout: 30 * time.Second, socketTimeout: 10 * time.Minute}
	if c.host == "" {
		return nil, fmt.Errorf("bad URI: no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("bad URI: port %q", p)
		}
		c.port = n
	}
	if strings.Contains(c.db, "/") {
		return nil, fmt.Errorf("bad URI: path %q is not one database name", c.db)
	}
	q := u.Query()
	get := func(k string) string {
		if v, ok := opts[k]; ok {
			return v
		}
		return q.Get(k)
	}
	for k := range q {
		switch k {
		case "table", "query", "auth", "partition_column", "fetch_size", "connect_timeout", "socket_timeout", "user":
		default:
			return nil, fmt.Errorf("unknown option %q (want table, query, auth, partition_column, fetch_size, connect_timeout, socket_timeout or user)", k)
		}
	}
	c.table, c.query = strings.TrimSpace(get("table")), strings.TrimSpace(get("query"))
	if (c.table == "") == (c.query == "") {
		return nil, fmt.Errorf("give exactly one of table=T or query=SQL")
	}
	c.query = strings.TrimRight(c.query, "; \n\t")
	if v := get("user"); v != "" {
		c.user = v
	}
	if c.user == "" {
		c.user = "liminal"
	}
	if v := get("auth"); v != "" {
		c.auth = strings.ToUpper(v)
	}
	switch c.auth {
	case "NOSASL", "NONE", "LDAP":
	default:
		return nil, fmt.Errorf("unknown auth %q (want NOSASL, NONE or LDAP)", c.auth)
	}
	if c.auth == "LDAP" && c.password == "" {
		return nil, fmt.Errorf("auth LDAP needs a password (secret_env or secret_file)")
	}
	c.partitionColumn = get("partition_column")
	if v := get("fetch_size"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n > 1_000_000 {
			return nil, fmt.Errorf("fetch_size %q: want 1 to 1000000", v)
		}
		c.fetchSize = n
	}
	for k, d := range map[string]*time.Duration{"connect_timeout": &c.connectTimeout, "socket_timeout": &c.socketTimeout} {
		if v := get(k); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t <= 0 {
				return nil, fmt.Errorf("%s %q: want a duration like 30s", k, v)
			}
			*d = t
		}
	}
	return c, nil
}

// quoteIdent renders a Hive identifier (db.table parts are quoted one by
// one).
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func quoteTable(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = quoteIdent(strings.Trim(p, "`"))
	}
	return strings.Join(parts, ".")
}

// quoteString renders a HiveQL string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Source reads a Hive table or query. It is safe for concurrent use: every
// call opens its own session.
type Source struct {
	name string
	uri  string
	cfg  *config
	mem  memory.Allocator

	mu     sync.Mutex
	schema *arrow.Schema
}

var _ connectors.ArrowSource = (*Source)(nil)

// OpenSource implements connectors.SourceFactory; it checks the URI and
// that the server answers with the source's schema.
func OpenSource(ctx context.Context, c connectors.SourceConfig) (connectors.Source, error) {
	return NewSource(ctx, c, memory.DefaultAllocator)
}

// NewSource is OpenSource with an explicit allocator for the batches Read
// returns.
func NewSource(ctx context.Context, c connectors.SourceConfig, mem memory.Allocator) (*Source, error) {
	cfg, err := parseConfig(c.URI, c.Options, c.Secret)
	if err != nil {
		return nil, connectors.Permanent(fmt.Errorf("source %s: %s: %w", c.Name, connectors.Redact(c.URI), err))
	}
	s := &Source{name: c.Name, uri: connectors.Redact(c.URI), cfg: cfg, mem: mem}
	if _, err := s.Schema(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Describe implements connectors.Source.
func (s *Source) Describe() string {
	what := "table " + s.cfg.table
	if s.cfg.query != "" {
		what = "query"
	}
	return fmt.Sprintf("hive %s:%d/%s (%s, auth %s)", s.cfg.host, s.cfg.port, s.cfg.db, what, s.cfg.auth)
}

// from is the FROM clause of the source.
func (s *Source) from() string {
	if s.cfg.table != "" {
		return quoteTable(s.cfg.table)
	}
	return "(" + s.cfg.query + ") liminal_q"
}

// Schema implements connectors.Source: the result metadata of a LIMIT 0
// query, with the element types of complex columns from DESCRIBE.
func (s *Source) Schema(ctx context.Context) (*arrow.Schema, error) {
	s.mu.Lock()
	sc := s.schema
	s.mu.Unlock()
	if sc != nil {
		return sc, nil
	}
	c, err := dial(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	defer c.close()
	op, err := c.execute(ctx, "SELECT * FROM "+s.from()+" LIMIT 0")
	if err != nil {
		return nil, fmt.Errorf("source %s: schema: %w", s.name, err)
	}
	descs, err := c.metadata(ctx, op)
	c.closeOp(op)
	if err != nil {
		return nil, fmt.Errorf("source %s: schema: %w", s.name, err)
	}
	var full map[string]string
	for _, d := range descs {
		if isComplex(d.TypeDesc) {
			full = s.describe(ctx, c)
			break
		}
	}
	fields := make([]arrow.Field, len(descs))
	for i, d := range descs {
		name := columnName(d.ColumnName)
		dt, err := arrowFromDesc(d.TypeDesc, full[strings.ToLower(name)])
		if err != nil {
			return nil, connectors.Permanent(fmt.Errorf("source %s: column %s: %w", s.name, name, err))
		}
		fields[i] = arrow.Field{Name: name, Type: dt, Nullable: true}
	}
	sc = arrow.NewSchema(fields, nil)
	s.mu.Lock()
	s.schema = sc
	s.mu.Unlock()
	return sc, nil
}

// columnName drops a "table." prefix that Hive may put on result columns.
func columnName(n string) string {
	if k := strings.LastIndexByte(n, '.'); k >= 0 {
		return n[k+1:]
	}
	return n
}

func isComplex(d *hiveserver.TTypeDesc) bool {
	if d == nil || len(d.Types) == 0 || d.Types[0].PrimitiveEntry == nil {
		return false
	}
	switch d.Types[0].PrimitiveEntry.Type {
	case hiveserver.TTypeId_ARRAY_TYPE, hiveserver.TTypeId_MAP_TYPE, hiveserver.TTypeId_STRUCT_TYPE:
		return true
	}
	return false
}

// describe maps lower-case column names to their full type strings, from
// DESCRIBE (tables) or DESCRIBE QUERY (queries; Spark only). It returns
// nil when the server cannot tell; complex columns are then text.
func (s *Source) describe(ctx context.Context, c *conn) map[string]string {
	stmt := "DESCRIBE " + quoteTable(s.cfg.table)
	if s.cfg.query != "" {
		stmt = "DESCRIBE QUERY " + s.cfg.query
	}
	rows, err := c.query(ctx, stmt)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, r := range rows {
		if len(r) < 2 || r[0] == nil || r[1] == nil {
			continue
		}
		n := strings.TrimSpace(*r[0])
		if n == "" || strings.HasPrefix(n, "#") {
			break // the partition information that follows repeats columns
		}
		if _, dup := out[strings.ToLower(n)]; !dup {
			out[strings.ToLower(n)] = strings.TrimSpace(*r[1])
		}
	}
	return out
}

// Split attributes.
const (
	attrWhere = "where" // the split's predicate; empty for the whole source
	attrKind  = "kind"  // all, partitions or range
)

// Splits implements connectors.Source: Hive partitions of a partitioned
// table, key ranges of partition_column, or the whole source.
func (s *Source) Splits(ctx context.Context, o partition.Options) ([]partition.Split, error) {
	whole := []partition.Split{s.split(0, "all", "", 0)}
	if o.By == partition.None {
		return whole, nil
	}
	sc, err := s.Schema(ctx)
	if err != nil {
		return nil, err
	}
	c, err := dial(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if s.cfg.partitionColumn != "" {
		return s.rangeSplits(ctx, c, sc, o)
	}
	if s.cfg.table == "" {
		return whole, nil
	}
	preds, err := s.partitions(ctx, c, sc)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", s.name, err)
	}
	if len(preds) == 0 {
		return whole, nil
	}
	groups := len(preds)
	if o.MaxPartitions > 0 && groups > o.MaxPartitions {
		groups = o.MaxPartitions
	}
	out := make([]partition.Split, groups)
	for g := range groups {
		lo, hi := g*len(preds)/groups, (g+1)*len(preds)/groups
		where := preds[lo]
		if hi-lo > 1 {
			where = "(" + strings.Join(preds[lo:hi], ") OR (") + ")"
		}
		out[g] = s.split(g, "partitions", where, 0)
	}
	return out, nil
}

func (s *Source) split(i int, kind, where string, rows int64) partition.Split {
	loc := "all rows"
	if where != "" {
		loc = where
	}
	return partition.Split{ID: fmt.Sprintf("%s-%05d", s.name, i), Source: s.name, Locator: loc, Rows: rows,
		Attrs: map[string]string{attrKind: kind, attrWhere: where}}
}

// partitions lists the table's partitions as predicates, in the server's
// order. A table that is not partitioned has none.
func (s *Source) partitions(ctx context.Context, c *conn, sc *arrow.Schema) ([]string, error) {
	rows, err := c.query(ctx, "SHOW PARTITIONS "+quoteTable(s.cfg.table))
	if err != nil {
		if errors.Is(err, connectors.ErrPermanent) && strings.Contains(strings.ToLower(err.Error()), "partition") {
			return nil, nil // "... is not partitioned" (Hive and Spark word it differently)
		}
		return nil, err
	}
	var preds []string
	for _, r := range rows {
		if len(r) == 0 || r[0] == nil {
			continue
		}
		p, err := partitionPredicate(*r[0], sc)
		if err != nil {
			return nil, err
		}
		preds = append(preds, p)
	}
	return preds, nil
}

// hiveNull is the directory name Hive gives a NULL partition value.
const hiveNull = "__HIVE_DEFAULT_PARTITION__"

// partitionPredicate turns "dt=2024-01-01/region=a%2Fb" into a predicate
// with literals typed as the columns are.
func partitionPredicate(spec string, sc *arrow.Schema) (string, error) {
	var terms []string
	for _, kv := range strings.Split(spec, "/") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return "", fmt.Errorf("partition %q: %q is not key=value", spec, kv)
		}
		key, err := url.PathUnescape(k)
		if err != nil {
			return "", fmt.Errorf("partition %q: %v", spec, err)
		}
		if v == hiveNull {
			terms = append(terms, quoteIdent(key)+" IS NULL")
			continue
		}
		val, err := url.PathUnescape(v)
		if err != nil {
			return "", fmt.Errorf("partition %q: %v", spec, err)
		}
		var dt arrow.DataType = arrow.BinaryTypes.String
		for _, f := range sc.Fields() {
			if strings.EqualFold(f.Name, key) {
				dt = f.Type
			}
		}
		terms = append(terms, quoteIdent(key)+" = "+literal(val, dt))
	}
	return strings.Join(terms, " AND "), nil
}

// literal renders a partition value as a literal of type dt.
func literal(v string, dt arrow.DataType) string {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			return v
		}
	case arrow.FLOAT32, arrow.FLOAT64, arrow.DECIMAL128:
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			return v
		}
	case arrow.BOOL:
		if b, err := strconv.ParseBool(v); err == nil {
			return strconv.FormatBool(b)
		}
	case arrow.DATE32:
		return "DATE " + quoteString(v)
	case arrow.TIMESTAMP:
		return "TIMESTAMP " + quoteString(v)
	}
	return quoteString(v)
}

// rangeSplits cuts [min, max] of the integer partition_column into ranges;
// the first range also takes NULLs, the last is open above.
func (s *Source) rangeSplits(ctx context.Context, c *conn, sc *arrow.Schema, o partition.Options) ([]partition.Split, error) {
	col := s.cfg.partitionColumn
	var field *arrow.Field
	for i, f := range sc.Fields() {
		if strings.EqualFold(f.Name, col) {
			field = &sc.Fields()[i]
		}
	}
	if field == nil {
		return nil, connectors.Permanent(fmt.Errorf("source %s: partition_column %q is not a column (have %s)", s.name, col, names(sc)))
	}
	switch field.Type.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
	default:
		return nil, connectors.Permanent(fmt.Errorf("source %s: partition_column %q is %s; key ranges need an integer column", s.name, col, field.Type))
	}
	q := quoteIdent(field.Name)
	rows, err := c.query(ctx, fmt.Sprintf("SELECT CAST(min(%s) AS STRING), CAST(max(%s) AS STRING), count(*) FROM %s", q, q, s.from()))
	if err != nil {
		return nil, fmt.Errorf("source %s: key range of %s: %w", s.name, col, err)
	}
	if len(rows) != 1 || len(rows[0]) != 3 || rows[0][2] == nil {
		return nil, fmt.Errorf("source %s: key range of %s: unexpected answer", s.name, col)
	}
	total, _ := strconv.ParseInt(*rows[0][2], 10, 64)
	if rows[0][0] == nil || rows[0][1] == nil {
		return []partition.Split{s.split(0, "all", "", total)}, nil // empty, or only NULLs
	}
	lo, ok1 := new(big.Int).SetString(*rows[0][0], 10)
	hi, ok2 := new(big.Int).SetString(*rows[0][1], 10)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("source %s: key range of %s: %q..%q are not integers", s.name, col, *rows[0][0], *rows[0][1])
	}
	n := rangeCount(total, o)
	span := new(big.Int).Add(new(big.Int).Sub(hi, lo), big.NewInt(1))
	if span.Cmp(big.NewInt(int64(n))) < 0 {
		n = int(span.Int64())
	}
	if n <= 1 {
		return []partition.Split{s.split(0, "range", "", total)}, nil
	}
	bound := func(i int) string { // lo + span*i/n
		b := new(big.Int).Mul(span, big.NewInt(int64(i)))
		b.Quo(b, big.NewInt(int64(n)))
		return b.Add(b, lo).String()
	}
	out := make([]partition.Split, n)
	for i := range n {
		var where string
		switch i {
		case 0:
			where = fmt.Sprintf("(%s < %s OR %s IS NULL)", q, bound(1), q)
		case n - 1:
			where = fmt.Sprintf("%s >= %s", q, bound(i))
		default:
			where = fmt.Sprintf("%s >= %s AND %s < %s", q, bound(i), q, bound(i+1))
		}
		out[i] = s.split(i, "range", where, total/int64(n))
	}
	return out, nil
}

// rangeCount picks the number of key ranges for total rows: explicit
// target rows, else enough to keep every slot busy twice over within
// partition's automatic bounds; never more than MaxPartitions.
func rangeCount(total int64, o partition.Options) int {
	target := o.TargetRows
	if target <= 0 {
		slots := int64(max(1, o.Slots))
		target = min(max((total+2*slots-1)/(2*slots), partition.MinAutoRows), partition.MaxAutoRows)
	}
	n := int((total + target - 1) / target)
	if o.MaxPartitions > 0 && n > o.MaxPartitions {
		n = o.MaxPartitions
	}
	return max(n, 1)
}

func names(sc *arrow.Schema) string {
	var n []string
	for _, f := range sc.Fields() {
		n = append(n, f.Name)
	}
	return strings.Join(n, ", ")
}

// Read implements connectors.ArrowSource: it runs the split's query with
// the projection pushed down and streams the rows, fetch_size at a time.
// The reader holds one server session until its last Release.
func (s *Source) Read(ctx context.Context, sp partition.Split, cols []string) (array.RecordReader, error) {
	sc, err := s.Schema(ctx)
	if err != nil {
		return nil, err
	}
	proj := "*"
	out := sc
	if len(cols) > 0 {
		fields := make([]arrow.Field, len(cols))
		q := make([]string, len(cols))
		for i, c := range cols {
			k := sc.FieldIndices(c)
			if len(k) == 0 {
				for j, f := range sc.Fields() {
					if strings.EqualFold(f.Name, c) {
						k = []int{j}
						break
					}
				}
			}
			if len(k) == 0 {
				return nil, connectors.Permanent(fmt.Errorf("source %s: no column %q (have %s)", s.name, c, names(sc)))
			}
			fields[i] = sc.Field(k[0])
			q[i] = quoteIdent(fields[i].Name)
		}
		proj = strings.Join(q, ", ")
		out = arrow.NewSchema(fields, nil)
	}
	stmt := "SELECT " + proj + " FROM " + s.from()
	if w := sp.Attrs[attrWhere]; w != "" {
		stmt += " WHERE " + w
	}
	c, err := dial(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	op, err := c.execute(ctx, stmt)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("source %s: split %s: %w", s.name, sp.ID, err)
	}
	descs, err := c.metadata(ctx, op)
	if err == nil && len(descs) != out.NumFields() {
		err = connectors.Permanent(fmt.Errorf("the server returned %d columns, the schema has %d (did the table change?)", len(descs), out.NumFields()))
	}
	if err != nil {
		c.closeOp(op)
		c.close()
		return nil, fmt.Errorf("source %s: split %s: %w", s.name, sp.ID, err)
	}
	r := &reader{ctx: ctx, conn: c, op: op, schema: out, mem: s.mem, fetch: s.cfg.fetchSize, where: s.name + " split " + sp.ID}
	r.Init(r.free)
	return r, nil
}

// reader streams one operation's rows as record batches.
type reader struct {
	arrowref.Count
	ctx    context.Context
	conn   *conn
	op     *hiveserver.TOperationHandle
	schema *arrow.Schema
	mem    memory.Allocator
	fetch  int64
	where  string
	cur    arrow.RecordBatch
	err    error
	done   bool
}

var _ array.RecordReader = (*reader)(nil)

func (r *reader) Schema() *arrow.Schema { return r.schema }
func (r *reader) Err() error            { return r.err }

// RecordBatch is valid until the next call to Next or the last Release.
func (r *reader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is RecordBatch (the deprecated name).
func (r *reader) Record() arrow.RecordBatch { return r.cur }

// free ends the operation and the session on the last reference.
func (r *reader) free() {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	r.finish()
}

func (r *reader) finish() {
	if r.conn != nil {
		r.conn.closeOp(r.op)
		r.conn.close()
		r.conn = nil
	}
}

// Next fetches the next batch; false at the end or on an error (Err).
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
		r.conn.cancelOp(r.op)
		r.finish()
		return false
	}
	cols, n, err := r.conn.fetch(r.ctx, r.op, r.fetch)
	if err != nil {
		r.err = fmt.Errorf("source %s: %w", r.where, err)
		r.finish()
		return false
	}
	if n == 0 {
		r.done = true
		r.finish()
		return false
	}
	if len(cols) != r.schema.NumFields() {
		r.err = connectors.Permanent(fmt.Errorf("source %s: fetch returned %d columns, want %d", r.where, len(cols), r.schema.NumFields()))
		r.finish()
		return false
	}
	b := array.NewRecordBuilder(r.mem, r.schema)
	defer b.Release()
	for i, col := range cols {
		if err := appendColumn(b.Field(i), col); err != nil {
			r.err = connectors.Permanent(fmt.Errorf("source %s: column %s: %w", r.where, r.schema.Field(i).Name, err))
			r.finish()
			return false
		}
	}
	r.cur = b.NewRecordBatch()
	return true
}
