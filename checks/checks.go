package checks

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/liminal-data/liminal/internal/arrowtext"
	"github.com/liminal-data/liminal/spec"
)

// Check types, as spelled in a spec.
const (
	TypeRowCount       = "row_count"
	TypeNotNull        = "not_null"
	TypeUnique         = "unique"
	TypeAcceptedValues = "accepted_values"
	TypeRelationships  = "relationships"
	TypeSQL            = "sql"
)

// Severities of a check.
const (
	// SeverityError is the default: a failed check blocks the commit.
	SeverityError = "error"
	// SeverityWarn reports a failed check without blocking.
	SeverityWarn = "warn"
)

const (
	// maxSample is how many offending values or rows a Result keeps.
	maxSample = 5
	// maxInMessage is how many of them the Message quotes.
	maxInMessage = 3
	// maxSampleLen bounds one rendered sample, in characters.
	maxSampleLen = 200
)

// Querier runs a query on a DuckDB connection and streams its result as
// Arrow batches (the engine's connections satisfy it). Run calls it from
// one goroutine, one query at a time, and releases every reader it gets.
type Querier interface {
	Query(ctx context.Context, query string) (array.RecordReader, error)
}

// queryRows runs q and returns its rows, each value rendered as text
// (NULL as nil). Check queries return a few rows.
func queryRows(ctx context.Context, db Querier, q string) ([][]*string, error) {
	rr, err := db.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rr.Release()
	return arrowtext.Rows(rr)
}

// Result is the outcome of one check.
type Result struct {
	// Name is the check's name, by default type(columns), e.g.
	// "unique(customer_id, dt)".
	Name string `json:"name"`
	// Type is the check type (row_count, not_null, ...).
	Type string `json:"type"`
	// Severity is error or warn.
	Severity string `json:"severity"`
	// Passed is true when the check found nothing wrong.
	Passed bool `json:"passed"`
	// Failures counts what the check found: rows with NULLs (not_null),
	// duplicate keys (unique), rows with other values (accepted_values),
	// rows whose value is missing from the referenced table
	// (relationships), rows the query returned (sql); 1 when a row_count
	// is out of bounds.
	Failures int64 `json:"failures"`
	// Sample holds up to 5 offending values, keys or rows as text (the
	// row count for row_count).
	Sample []string `json:"sample,omitempty"`
	// Message is one readable line, e.g. "unique(customer_id, dt): 3
	// duplicate keys, e.g. (42, 2024-01-01)".
	Message string `json:"message"`
	// Error is set when the check's SQL itself failed (an unknown column,
	// a bad query, a cancelled context); the check then counts as failed
	// with severity error.
	Error string `json:"error,omitempty"`
}

// Blocks reports whether r must stop the commit: it failed, and its
// severity is not warn.
func (r Result) Blocks() bool {
	return !r.Passed && r.Severity != SeverityWarn
}

// Blocking returns the results that must stop the commit: failed, with
// severity error.
func Blocking(results []Result) []Result {
	var out []Result
	for _, r := range results {
		if r.Blocks() {
			out = append(out, r)
		}
	}
	return out
}

// Failed returns the results that did not pass, whatever their severity
// (what a check_failure alert reports).
func Failed(results []Result) []Result {
	var out []Result
	for _, r := range results {
		if !r.Passed {
			out = append(out, r)
		}
	}
	return out
}

// Name is the name of check c in results: its own, or type(columns).
func Name(c spec.Check) string {
	if c.Name != "" {
		return c.Name
	}
	if len(c.Columns) == 0 {
		return c.Type
	}
	return c.Type + "(" + strings.Join(c.Columns, ", ") + ")"
}

// Run runs checks, in order, over output: a DuckDB table expression for
// the task's output, e.g. read_parquet(['/staged/a.parquet']). tables maps
// the names a check may refer to (relationships' to, and tables read by
// custom sql) to table expressions. Each check is one query through db.
// Run never fails as a whole: a check whose query fails has Error set.
func Run(ctx context.Context, db Querier, output string, checks []spec.Check, tables map[string]string) []Result {
	results := make([]Result, 0, len(checks))
	for _, c := range checks {
		results = append(results, runOne(ctx, db, output, c, tables))
	}
	return results
}

// runOne runs one check.
func runOne(ctx context.Context, db Querier, output string, c spec.Check, tables map[string]string) Result {
	r := Result{Name: Name(c), Type: c.Type, Severity: c.Severity}
	if r.Severity == "" {
		r.Severity = SeverityError
	}
	var err error
	if c.Type == TypeRowCount {
		err = rowCount(ctx, db, output, c, &r)
	} else {
		var q query
		if q, err = build(output, c, tables); err == nil {
			err = q.run(ctx, db, &r)
		}
		if err == nil {
			r.Passed = r.Failures == 0
			r.Message = q.message(r)
		}
	}
	if err != nil {
		r.Passed = false
		r.Failures = 0
		r.Sample = nil
		r.Severity = SeverityError
		r.Error = cleanError(err)
		r.Message = r.Name + ": " + r.Error
	}
	return r
}

// rowCount runs a row_count check: the output's count against Min and
// Max.
func rowCount(ctx context.Context, db Querier, output string, c spec.Check, r *Result) error {
	if c.Min == nil && c.Max == nil {
		return fmt.Errorf("a row_count check needs min, max or both")
	}
	rows, err := queryRows(ctx, db, with(output, nil)+`
SELECT count(*) FROM "output"`)
	if err != nil {
		return err
	}
	if len(rows) != 1 || rows[0][0] == nil {
		return fmt.Errorf("count returned no row")
	}
	n, err := strconv.ParseInt(*rows[0][0], 10, 64)
	if err != nil {
		return err
	}
	r.Sample = []string{strconv.FormatInt(n, 10)}
	r.Passed = (c.Min == nil || n >= *c.Min) && (c.Max == nil || n <= *c.Max)
	r.Message = fmt.Sprintf("%s: %s", r.Name, plural(n, "row", "rows"))
	if !r.Passed {
		r.Failures = 1
		switch {
		case c.Min != nil && c.Max != nil:
			r.Message += fmt.Sprintf(", want between %d and %d", *c.Min, *c.Max)
		case c.Min != nil:
			r.Message += fmt.Sprintf(", want at least %d", *c.Min)
		default:
			r.Message += fmt.Sprintf(", want at most %d", *c.Max)
		}
	}
	return nil
}

// query is one check's SQL. It returns one row per sample (none when
// nothing failed), each with the count of failures and a sample rendered
// as text.
type query struct {
	sql string
	// one and many name the failures in the message, e.g. "duplicate
	// key" and "duplicate keys".
	one, many string
}

// run executes q and fills r.Failures and r.Sample.
func (q *query) run(ctx context.Context, db Querier, r *Result) error {
	rows, err := queryRows(ctx, db, q.sql)
	if err != nil {
		return err
	}
	for _, row := range rows {
		if len(row) != 2 || row[0] == nil {
			return fmt.Errorf("check query returned %d columns", len(row))
		}
		n, err := strconv.ParseInt(*row[0], 10, 64)
		if err != nil {
			return err
		}
		r.Failures = n
		if len(r.Sample) < maxSample {
			r.Sample = append(r.Sample, clip(row[1]))
		}
	}
	return nil
}

// message is r's line once q ran.
func (q *query) message(r Result) string {
	if r.Passed {
		return r.Name + ": ok"
	}
	m := fmt.Sprintf("%s: %d %s", r.Name, r.Failures, q.many)
	if r.Failures == 1 {
		m = fmt.Sprintf("%s: 1 %s", r.Name, q.one)
	}
	if len(r.Sample) > 0 {
		m += ", e.g. " + strings.Join(r.Sample[:min(len(r.Sample), maxInMessage)], ", ")
	}
	return m
}

// build writes the query of a check other than row_count. Every query
// reads the output as the CTE "output" and collects what fails in the CTE
// liminal_bad; the final select counts liminal_bad and renders a few of
// its rows.
func build(output string, c spec.Check, tables map[string]string) (query, error) {
	switch c.Type {
	case TypeNotNull, TypeUnique:
		if len(c.Columns) == 0 {
			return query{}, fmt.Errorf("a %s check needs columns", c.Type)
		}
	case TypeAcceptedValues, TypeRelationships:
		if len(c.Columns) != 1 {
			return query{}, fmt.Errorf("the %s check takes exactly one column, got %d", c.Type, len(c.Columns))
		}
	}
	cols := make([]string, len(c.Columns))
	for i, col := range c.Columns {
		cols[i] = ident(col)
	}
	var q query
	var bad, sample string
	switch c.Type {
	case TypeNotNull:
		// Sample whole rows: which row is more useful than its NULL.
		bad = `SELECT * FROM "output" WHERE ` + joinEach(cols, "%s IS NULL", " OR ")
		sample = rowSample
		q.one, q.many = "row with NULLs", "rows with NULLs"
	case TypeUnique:
		// NULL keys are not duplicates (as in SQL UNIQUE); not_null
		// checks them.
		key := strings.Join(cols, ", ")
		bad = `SELECT ` + key + `, count(*) AS liminal_n FROM "output" WHERE ` +
			joinEach(cols, "%s IS NOT NULL", " AND ") + ` GROUP BY ` + key + ` HAVING count(*) > 1`
		sample = `SELECT ` + render(cols) + ` AS s, -liminal_n AS k FROM liminal_bad ORDER BY k, s LIMIT 5`
		q.one, q.many = "duplicate key", "duplicate keys"
	case TypeAcceptedValues:
		if len(c.Values) == 0 {
			return query{}, fmt.Errorf("an accepted_values check needs values")
		}
		marks := make([]string, len(c.Values))
		for i, v := range c.Values {
			marks[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		}
		col := cols[0]
		bad = `SELECT CAST(` + col + ` AS VARCHAR) AS v FROM "output" WHERE ` + col + ` IS NOT NULL AND CAST(` +
			col + ` AS VARCHAR) NOT IN (` + strings.Join(marks, ", ") + `)`
		sample = valueSample
		q.one = "row with a value not in " + list(c.Values)
		q.many = "rows with values not in " + list(c.Values)
	case TypeRelationships:
		to, ok := tables[c.To]
		if !ok {
			return query{}, fmt.Errorf("unknown table %q (known: %s)", c.To, known(tables))
		}
		if c.Field == "" {
			return query{}, fmt.Errorf("a relationships check needs field")
		}
		col := `liminal_o.` + cols[0]
		bad = `SELECT CAST(` + col + ` AS VARCHAR) AS v FROM "output" AS liminal_o WHERE ` + col +
			` IS NOT NULL AND NOT EXISTS (SELECT 1 FROM liminal_to WHERE liminal_to.` + ident(c.Field) + ` = ` + col + `)`
		tables = map[string]string{"liminal_to": to}
		sample = valueSample
		q.one = "row whose value is missing from " + c.To + "." + c.Field
		q.many = "rows whose values are missing from " + c.To + "." + c.Field
	case TypeSQL:
		body := strings.TrimSpace(c.SQL)
		for strings.HasSuffix(body, ";") {
			body = strings.TrimSpace(strings.TrimSuffix(body, ";"))
		}
		if body == "" {
			return query{}, fmt.Errorf("an sql check needs sql")
		}
		// A newline before ")" ends a trailing -- comment.
		bad = body + "\n"
		sample = rowSample
		q.one, q.many = "failing row", "failing rows"
	default:
		return query{}, fmt.Errorf("unknown check type %q", c.Type)
	}
	if c.Type != TypeRelationships && c.Type != TypeSQL {
		tables = nil
	}
	q.sql = with(output, tables, `liminal_bad AS (`+bad+`)`) + `
SELECT (SELECT count(*) FROM liminal_bad) AS n, s FROM (` + sample + `) AS liminal_sample ORDER BY k, s`
	return q, nil
}

// Samples: whole rows rendered as DuckDB structs ({'id': 1, ...}), or the
// most frequent values. k orders them.
const (
	rowSample   = `SELECT left(CAST(liminal_bad AS VARCHAR), 200) AS s, 0 AS k FROM liminal_bad LIMIT 5`
	valueSample = `SELECT v AS s, -count(*) AS k FROM liminal_bad GROUP BY v ORDER BY k, s LIMIT 5`
)

// with starts a query with the CTEs "output" and one per table, each of
// its table expression, then more.
func with(output string, tables map[string]string, more ...string) string {
	ctes := []string{`"output" AS (SELECT * FROM ` + output + `)`}
	names := make([]string, 0, len(tables))
	for name := range tables {
		if !strings.EqualFold(name, "output") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		ctes = append(ctes, ident(name)+` AS (SELECT * FROM `+tables[name]+`)`)
	}
	return "WITH " + strings.Join(append(ctes, more...), ",\n")
}

// render is SQL rendering a key as text: the value of one column, or
// (a, b) for several; NULL as NULL.
func render(cols []string) string {
	if len(cols) == 1 {
		return `coalesce(CAST(` + cols[0] + ` AS VARCHAR), 'NULL')`
	}
	return `'(' || concat_ws(', ', ` + joinEach(cols, "coalesce(CAST(%s AS VARCHAR), 'NULL')", ", ") + `) || ')'`
}

// ident quotes a column or table name for DuckDB.
func ident(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// joinEach formats each of items with format and joins them with sep.
func joinEach(items []string, format, sep string) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = fmt.Sprintf(format, it)
	}
	return strings.Join(parts, sep)
}

// list renders accepted values for a message: [a, b, c], cut after 10.
func list(values []string) string {
	if len(values) > 10 {
		return "[" + strings.Join(values[:10], ", ") + fmt.Sprintf(", ... (%d values)]", len(values))
	}
	return "[" + strings.Join(values, ", ") + "]"
}

// known lists the table names a check may refer to.
func known(tables map[string]string) string {
	if len(tables) == 0 {
		return "none"
	}
	names := make([]string, 0, len(tables))
	for name := range tables {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// plural writes n and the noun for it.
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatInt(n, 10) + " " + many
}

// clip renders one sample: NULL, or the text cut to maxSampleLen
// characters.
func clip(s *string) string {
	if s == nil {
		return "NULL"
	}
	if *s == "" {
		return "''"
	}
	if r := []rune(*s); len(r) > maxSampleLen {
		return string(r[:maxSampleLen]) + "…"
	}
	return *s
}

// cleanError is the text of a check's error: DuckDB's message without
// the position lines that point into SQL the user did not write, on one
// line.
func cleanError(err error) string {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "LINE ") || strings.HasPrefix(l, "^") {
			continue
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, " ")
}
