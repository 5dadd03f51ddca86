package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/liminal-data/liminal/internal/arrowtext"
)

// Kind is how a query runs over partitions.
type Kind string

// The plan kinds.
const (
	// Local: every partition runs the query; the outputs concatenate.
	Local Kind = "local"
	// TwoStage: every partition runs Partial; one final job runs Final over
	// the union of the partial results (PartialsTable).
	TwoStage Kind = "two_stage"
	// Single: the planner cannot split the query safely; it runs as one
	// partition over the whole input (with every core) and a warning.
	Single Kind = "single"
)

// PartialsTable is the table name under which a final stage sees the union
// of the partial results.
const PartialsTable = "__liminal_partials"

// Column is an output column: name and DuckDB type.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Plan says how a query runs over the partitions of its driving table.
type Plan struct {
	Kind    Kind     `json:"kind"`
	Driving string   `json:"driving,omitempty"` // the partitioned table
	Partial string   `json:"partial"`           // per partition (Single: the query)
	Final   string   `json:"final,omitempty"`   // over PartialsTable; "" for none
	Reason  string   `json:"reason,omitempty"`  // why the plan is not Local
	Columns []Column `json:"columns"`
	// TopN is set for a two-stage ORDER BY ... LIMIT without aggregation:
	// each partial keeps the first rows of its partition, and DuckDB prunes
	// row groups with the running threshold, which works best on few large
	// partitions: one per process (100M rows on 2 cores: 1.35 s with 11
	// partitions, 0.84 s with 2, 0.58 s with 1; RESULTS.md).
	TopN bool `json:"top_n,omitempty"`
	// Schema is the query's result as Arrow sees it (PlanInput.Arrow).
	Schema *arrow.Schema `json:"-"`
}

// PlanInput is what the planner needs to know about a query.
type PlanInput struct {
	Query string
	// Tables bind every table name the query may read to the whole input:
	// a Scan expression, or Schema for sources read through Go.
	Tables []PlanTable
	// Driving names the table to partition; "" picks the largest table the
	// query reads by Sizes.
	Driving string
	Sizes   map[string]int64
	// Gather is set when one writer must write the whole output (a
	// single-file sink): a Local plan then gets the final stage
	// "SELECT * FROM PartialsTable".
	Gather bool
	// Arrow asks for the result's Arrow schema in Plan.Schema (what Go
	// code scoring the result will see).
	Arrow bool
}

// PlanTable binds a table name for planning.
type PlanTable struct {
	Name   string
	Scan   string
	Schema *arrow.Schema
}

// SQLError is an error in the user's SQL (syntax, binding, types). It is
// permanent: retrying cannot fix it.
type SQLError struct{ Msg string }

func (e *SQLError) Error() string { return e.Msg }

// PlanSQL checks query against the tables (syntax, tables, columns, types)
// and decides how it runs over partitions.
func (e *Engine) PlanSQL(ctx context.Context, in PlanInput) (*Plan, error) {
	// The query is embedded in COPY (...) and subqueries: a trailing ";"
	// or "-- comment" would break them.
	in.Query = TrimStatement(in.Query)
	e.planMu.Lock()
	defer e.planMu.Unlock()
	c := e.planner.conn
	var cleanup []string
	defer func() {
		for _, q := range cleanup {
			_ = c.Exec(context.Background(), q)
		}
	}()
	for _, t := range in.Tables {
		switch {
		case t.Scan != "":
			if err := c.Exec(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP VIEW %s AS SELECT * FROM %s", ident(t.Name), t.Scan)); err != nil {
				return nil, fmt.Errorf("table %s: %w", t.Name, err)
			}
			cleanup = append(cleanup, "DROP VIEW IF EXISTS "+ident(t.Name))
		case t.Schema != nil:
			name := "__liminal_plan_" + t.Name
			release, err := c.registerArrow(emptyReader(t.Schema), name)
			if err != nil {
				return nil, fmt.Errorf("table %s: %w", t.Name, err)
			}
			defer release()
			if err := c.Exec(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s AS SELECT * FROM %s", ident(t.Name), ident(name))); err != nil {
				return nil, fmt.Errorf("table %s: %w", t.Name, err)
			}
			cleanup = append(cleanup, "DROP TABLE IF EXISTS "+ident(t.Name), "DROP VIEW IF EXISTS "+ident(name))
		}
	}
	stmts, err := serialize(ctx, c, in.Query)
	if err != nil {
		return nil, err
	}
	if len(stmts) != 1 {
		return nil, &SQLError{Msg: fmt.Sprintf("a task runs one SELECT statement, got %d statements", len(stmts))}
	}
	cols, err := describe(ctx, c, in.Query)
	if err != nil {
		return nil, &SQLError{Msg: cleanDuckErr(err)}
	}
	pl := &planner{ctx: ctx, c: c, cols: cols}
	node := obj(stmts[0])["node"]
	p := &Plan{Kind: Single, Partial: in.Query, Columns: cols}
	if in.Arrow {
		rr, err := c.Query(ctx, "SELECT * FROM ("+in.Query+") LIMIT 0")
		if err != nil {
			return nil, &SQLError{Msg: cleanDuckErr(err)}
		}
		p.Schema = rr.Schema()
		rr.Release()
	}
	refs := map[string]int{}
	countTables(node, refs)
	driving := strings.ToLower(in.Driving)
	if driving == "" {
		var best int64 = -1
		for name := range refs {
			for _, t := range in.Tables {
				if strings.EqualFold(t.Name, name) && in.Sizes[t.Name] > best {
					best, driving = in.Sizes[t.Name], strings.ToLower(t.Name)
				}
			}
		}
	}
	for _, t := range in.Tables {
		if strings.EqualFold(t.Name, driving) {
			p.Driving = t.Name
		}
	}
	switch {
	case p.Driving == "":
		p.Reason = "the query reads no partitionable source"
	case refs[driving] == 0:
		p.Reason = fmt.Sprintf("the query does not read the partitioned source %q", p.Driving)
	default:
		pl.driving = driving
		kind, partial, final, reason := pl.plan(obj(node), refs[driving])
		p.Kind, p.Reason, p.TopN = kind, reason, kind == TwoStage && pl.topN
		if kind != Local && kind != Single {
			p.Partial, p.Final, err = pl.render(partial, final)
			if err == nil {
				err = pl.validate(p)
			}
			if err != nil {
				p.Kind, p.Partial, p.Final = Single, in.Query, ""
				p.Reason = "the partial/final rewrite did not check out (" + err.Error() + ")"
			}
		}
	}
	if p.Kind == Local && in.Gather {
		p.Final = "SELECT * FROM " + PartialsTable
	}
	return p, nil
}

func emptyReader(sc *arrow.Schema) array.RecordReader {
	r, _ := array.NewRecordReader(sc, nil)
	return r
}

func describe(ctx context.Context, c *conn, q string) ([]Column, error) {
	rows, err := queryStrings(ctx, c, "DESCRIBE "+q)
	if err != nil {
		return nil, err
	}
	cols := make([]Column, len(rows))
	for i, r := range rows {
		cols[i] = Column{Name: r[0], Type: r[1]}
	}
	return cols, nil
}

// queryStrings runs q, a query with a small result, and returns its rows
// with every value as text (NULL as "").
func queryStrings(ctx context.Context, c *conn, q string) ([][]string, error) {
	rr, err := c.stream(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rr.Release()
	rows, err := arrowtext.Rows(rr)
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			if v != nil {
				out[i][j] = *v
			}
		}
	}
	return out, err
}

// queryString runs q and returns the first value of its one-row result.
func queryString(ctx context.Context, c *conn, q string) (string, error) {
	rows, err := queryStrings(ctx, c, q)
	if err != nil {
		return "", err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return "", fmt.Errorf("want one value from %.60q, got %d rows", q, len(rows))
	}
	return rows[0][0], nil
}

// cleanDuckErr keeps DuckDB's message on one line, without the echo of the
// (internally prefixed) query that follows "LINE n:".
func cleanDuckErr(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "\nLINE "); i > 0 {
		msg = msg[:i]
	}
	return strings.Join(strings.Fields(msg), " ")
}

func serialize(ctx context.Context, c *conn, q string) ([]any, error) {
	s, err := queryString(ctx, c, "SELECT json_serialize_sql("+quote(q)+"::VARCHAR)::VARCHAR")
	if err != nil {
		return nil, &SQLError{Msg: cleanDuckErr(err)}
	}
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var out map[string]any
	if err := d.Decode(&out); err != nil {
		return nil, fmt.Errorf("parse tree: %w", err)
	}
	if out["error"] == true {
		msg, _ := out["error_message"].(string)
		if strings.Contains(msg, "Only SELECT") {
			msg = "a task runs one SELECT statement (" + msg + ")"
		}
		return nil, &SQLError{Msg: msg}
	}
	stmts, _ := out["statements"].([]any)
	return stmts, nil
}

func deserialize(ctx context.Context, c *conn, node map[string]any) (string, error) {
	b, err := json.Marshal(map[string]any{"error": false, "statements": []any{map[string]any{"node": node}}})
	if err != nil {
		return "", err
	}
	s, err := queryString(ctx, c, "SELECT json_deserialize_sql("+quote(string(b))+"::JSON)")
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSpace(s), ";"), nil
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }
func arr(v any) []any          { a, _ := v.([]any); return a }
func str(v any) string         { s, _ := v.(string); return s }

// countTables counts base-table references by lower-cased name across the
// whole tree (subqueries and CTEs included), minus CTE names.
func countTables(v any, refs map[string]int) {
	switch x := v.(type) {
	case map[string]any:
		if x["type"] == "BASE_TABLE" && str(x["schema_name"]) == "" && str(x["catalog_name"]) == "" {
			refs[strings.ToLower(str(x["table_name"]))]++
		}
		for _, c := range x {
			countTables(c, refs)
		}
	case []any:
		for _, c := range x {
			countTables(c, refs)
		}
	}
}

// walkExpr visits every expression map (one with a "class") in v, not
// descending into subqueries when skipSubqueries is set.
func walkExpr(v any, skipSubqueries bool, f func(m map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["class"]; ok {
			f(x)
			if skipSubqueries && x["class"] == "SUBQUERY" {
				return
			}
		}
		for _, c := range x {
			walkExpr(c, skipSubqueries, f)
		}
	case []any:
		for _, c := range x {
			walkExpr(c, skipSubqueries, f)
		}
	}
}

// canon is an expression's identity: its JSON without positions and aliases.
func canon(v any) string {
	b, _ := json.Marshal(strip(v))
	return string(b)
}

func strip(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, c := range x {
			if k == "query_location" || k == "alias" {
				continue
			}
			m[k] = strip(c)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, c := range x {
			a[i] = strip(c)
		}
		return a
	}
	return v
}

// clone deep-copies a parse tree.
func clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, c := range x {
			m[k] = clone(c)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, c := range x {
			a[i] = clone(c)
		}
		return a
	}
	return v
}

type planner struct {
	ctx     context.Context
	c       *conn
	cols    []Column
	driving string
	topN    bool // the plan's partial is ORDER BY ... LIMIT
}

type fallback string

func (pl *planner) isAggregate(name string) bool {
	return isAggregateName(name)
}

func (pl *planner) hasAggregate(v any) bool {
	found := false
	walkExpr(v, true, func(m map[string]any) {
		if m["class"] == "FUNCTION" && pl.isAggregate(str(m["function_name"])) {
			found = true
		}
	})
	return found
}

func hasClass(v any, class string, skipSubqueries bool) bool {
	found := false
	walkExpr(v, skipSubqueries, func(m map[string]any) {
		if m["class"] == class {
			found = true
		}
	})
	return found
}

// localFrom reports whether the driving table sits in from where each row
// of it can be processed alone: a base table, joined only on its preserved
// side with other (whole, broadcast) inputs.
func (pl *planner) localFrom(n map[string]any) (found, ok bool) {
	switch n["type"] {
	case "BASE_TABLE":
		return strings.EqualFold(str(n["table_name"]), pl.driving) && str(n["schema_name"]) == "", true
	case "JOIN":
		lf, lok := pl.localFrom(obj(n["left"]))
		rf, rok := pl.localFrom(obj(n["right"]))
		if !lok || !rok {
			return false, false
		}
		if !lf && !rf {
			return false, true
		}
		switch str(n["ref_type"]) {
		case "REGULAR", "CROSS", "NATURAL", "":
		default:
			return true, false // ASOF, POSITIONAL, LATERAL
		}
		switch str(n["join_type"]) {
		case "INNER", "SEMI", "ANTI", "MARK":
			return true, lf || str(n["join_type"]) == "INNER"
		case "LEFT":
			return true, lf
		case "RIGHT":
			return true, rf
		}
		return true, false
	}
	refs := map[string]int{}
	countTables(n, refs)
	if refs[pl.driving] > 0 {
		return true, false
	}
	return false, true
}

type modifiers struct {
	distinct *map[string]any
	order    map[string]any
	limit    map[string]any
}

func parseModifiers(node map[string]any) (m modifiers, why string) {
	for _, x := range arr(node["modifiers"]) {
		mod := obj(x)
		switch mod["type"] {
		case "DISTINCT_MODIFIER":
			if len(arr(mod["distinct_on_targets"])) > 0 {
				return m, "DISTINCT ON needs the whole input"
			}
			m.distinct = &mod
		case "ORDER_MODIFIER":
			m.order = mod
		case "LIMIT_MODIFIER":
			m.limit = mod
		default:
			return m, fmt.Sprintf("%s needs the whole input", strings.ToLower(str(mod["type"])))
		}
	}
	return m, ""
}

// plan classifies a SELECT node and builds the partial and final nodes.
func (pl *planner) plan(node map[string]any, refs int) (Kind, map[string]any, map[string]any, string) {
	single := func(why string) (Kind, map[string]any, map[string]any, string) { return Single, nil, nil, why }
	if node["type"] != "SELECT_NODE" {
		return single("set operations (UNION, INTERSECT, EXCEPT) run as one partition")
	}
	if refs != 1 {
		return single(fmt.Sprintf("the partitioned table %q is read %d times", pl.driving, refs))
	}
	if name := unknownFunction(node); name != "" {
		return single(fmt.Sprintf("function %s is not in DuckDB's catalog as the planner read it, so the planner cannot tell whether it is row-wise", name))
	}
	for _, c := range arr(obj(node["cte_map"])["map"]) {
		if strings.EqualFold(str(obj(c)["key"]), pl.driving) {
			return single("a CTE shadows the partitioned table")
		}
	}
	if found, ok := pl.localFrom(obj(node["from_table"])); !found || !ok {
		return single("the partitioned table is inside a subquery, a CTE or on the null-supplying side of an outer join")
	}
	if node["sample"] != nil || node["qualify"] != nil {
		return single("SAMPLE and QUALIFY need the whole input")
	}
	if hasClass(node["select_list"], "WINDOW", true) || hasClass(node["having"], "WINDOW", true) || hasClass(node["modifiers"], "WINDOW", true) {
		return single("window functions need the whole input")
	}
	mods, why := parseModifiers(node)
	if why != "" {
		return single(why)
	}
	agg := len(arr(node["group_expressions"])) > 0 || pl.hasAggregate(node["select_list"]) || node["having"] != nil ||
		str(node["aggregate_handling"]) != "STANDARD_HANDLING"
	if !agg && mods.distinct == nil && mods.order == nil && mods.limit == nil {
		return Local, nil, nil, ""
	}
	var partial, final map[string]any
	var err error
	if agg {
		partial, final, err = pl.aggregate(node, mods)
	} else {
		partial, final, err = pl.reorder(node, mods)
		pl.topN = mods.order != nil && mods.limit != nil
	}
	var fb fallback
	if errors.As(err, &fb) {
		return single(string(fb))
	}
	if err != nil {
		return single(err.Error())
	}
	return TwoStage, partial, final, "runs as a partial stage per partition and a final stage"
}

func (f fallback) Error() string { return string(f) }

func colref(name string) map[string]any {
	return map[string]any{"class": "COLUMN_REF", "type": "COLUMN_REF", "alias": "", "column_names": []any{name}}
}

func baseTable(name string) map[string]any {
	return map[string]any{"type": "BASE_TABLE", "alias": "", "sample": nil, "schema_name": "", "table_name": name,
		"column_name_alias": []any{}, "catalog_name": "", "at_clause": nil, "qualified_name": map[string]any{"path": []any{name}}}
}

// funcArgs returns the argument expressions of a FUNCTION node (DuckDB 2.0
// keeps them as named arguments, {"name", "expression"}).
func funcArgs(f map[string]any) []any {
	var out []any
	for _, a := range arr(f["arguments"]) {
		out = append(out, obj(a)["expression"])
	}
	return out
}

// renameFunc points a FUNCTION node at another function.
func renameFunc(f map[string]any, name string) {
	f["function_name"] = name
	f["qualified_name"] = map[string]any{"path": []any{name}}
}

// refsAny reports whether v references a column whose (last) name is in
// names (lower case).
func refsAny(v any, names map[string]bool) bool {
	switch x := v.(type) {
	case map[string]any:
		if x["class"] == "COLUMN_REF" {
			if n := strs(x["column_names"]); len(n) > 0 && names[strings.ToLower(n[len(n)-1])] {
				return true
			}
		}
		for _, y := range x {
			if refsAny(y, names) {
				return true
			}
		}
	case []any:
		for _, y := range x {
			if refsAny(y, names) {
				return true
			}
		}
	}
	return false
}

// unknownFunction returns the first function called anywhere in v that
// DuckDB's catalog (catalogFunctions) does not classify, or "".
func unknownFunction(v any) string {
	switch x := v.(type) {
	case map[string]any:
		if x["class"] == "FUNCTION" {
			if _, ok := catalogClass(str(x["function_name"])); !ok {
				return str(x["function_name"])
			}
		}
		for _, y := range x {
			if n := unknownFunction(y); n != "" {
				return n
			}
		}
	case []any:
		for _, y := range x {
			if n := unknownFunction(y); n != "" {
				return n
			}
		}
	}
	return ""
}

// expr parses one SQL expression into a parse-tree node.
func (pl *planner) expr(sqlText string) (map[string]any, error) {
	stmts, err := serialize(pl.ctx, pl.c, "SELECT "+sqlText)
	if err != nil {
		return nil, err
	}
	return obj(arr(obj(obj(stmts[0])["node"])["select_list"])[0]), nil
}

func constInt(v any) (int64, bool) {
	m := obj(v)
	if m == nil || m["class"] != "CONSTANT" {
		return 0, false
	}
	lit := obj(m["literal"])
	if lit["kind"] != "INTEGER" {
		return 0, false
	}
	i, err := strconv.ParseInt(str(lit["text"]), 10, 64)
	return i, err == nil
}

// aggregate rewrites a grouped or aggregate query into a partial stage that
// groups each partition by the same keys with decomposable aggregates, and
// a final stage that combines the partials, then applies HAVING, ORDER BY,
// LIMIT and DISTINCT.
func (pl *planner) aggregate(node map[string]any, mods modifiers) (map[string]any, map[string]any, error) {
	if str(node["aggregate_handling"]) != "STANDARD_HANDLING" {
		return nil, nil, fallback("GROUP BY ALL runs as one partition")
	}
	sel := arr(node["select_list"])
	if hasClass(sel, "STAR", false) {
		return nil, nil, fallback("SELECT * with aggregates runs as one partition")
	}
	if hasClass(sel, "SUBQUERY", false) || hasClass(node["having"], "SUBQUERY", false) || hasClass(mods.order, "SUBQUERY", false) {
		return nil, nil, fallback("subqueries in an aggregate's select list run as one partition")
	}
	if len(sel) != len(pl.cols) {
		return nil, nil, fallback("the select list does not match the output columns")
	}
	groups := arr(clone(node["group_expressions"]))
	for i, g := range groups {
		if k, ok := constInt(g); ok {
			if k < 1 || int(k) > len(sel) {
				return nil, nil, fallback("GROUP BY position out of range")
			}
			e := clone(sel[k-1]).(map[string]any)
			e["alias"] = ""
			groups[i] = e
			continue
		}
		if gm := obj(g); gm["class"] == "COLUMN_REF" && len(arr(gm["column_names"])) == 1 {
			name := str(arr(gm["column_names"])[0])
			for _, s := range sel {
				if strings.EqualFold(str(obj(s)["alias"]), name) && canon(s) != canon(g) {
					return nil, nil, fallback("GROUP BY a select alias runs as one partition")
				}
			}
		}
	}
	sets := arr(node["group_sets"])
	simple := len(groups) == 0 && len(sets) == 0 || len(sets) == 1 && len(arr(sets[0])) == len(groups)
	if !simple {
		return nil, nil, fallback("GROUPING SETS, ROLLUP and CUBE run as one partition")
	}
	// DISTINCT aggregates over one argument X split too: the partials group
	// by the keys and X (so each partition keeps X once per group) and the
	// final stage applies the DISTINCT aggregate to the union; the other
	// aggregates re-aggregate over the finer groups.
	var distinctArg any
	var distinctErr error
	walkExpr([]any{sel, node["having"]}, true, func(m map[string]any) {
		if m["class"] != "FUNCTION" || m["distinct"] != true || !pl.isAggregate(str(m["function_name"])) {
			return
		}
		switch strings.ToLower(str(m["function_name"])) {
		case "min", "max":
			return // DISTINCT changes nothing
		case "count", "sum", "avg", "mean":
		default:
			distinctErr = fallback(fmt.Sprintf("%s(DISTINCT ...) runs as one partition", str(m["function_name"])))
			return
		}
		args := funcArgs(m)
		if len(args) != 1 || m["filter"] != nil {
			distinctErr = fallback("DISTINCT aggregates with a FILTER or several arguments run as one partition")
			return
		}
		if distinctArg != nil && canon(distinctArg) != canon(args[0]) {
			distinctErr = fallback("DISTINCT aggregates over different expressions run as one partition")
			return
		}
		distinctArg = args[0]
	})
	if distinctErr != nil {
		return nil, nil, distinctErr
	}
	gcanon := make([]string, len(groups))
	var partialSel []any
	for i, g := range groups {
		gcanon[i] = canon(g)
		e := clone(g).(map[string]any)
		e["alias"] = fmt.Sprintf("__g%d", i)
		partialSel = append(partialSel, e)
	}
	partialGroups := orEmpty(clone(groups).([]any))
	if distinctArg != nil {
		d := clone(distinctArg).(map[string]any)
		d["alias"] = "__d"
		partialSel = append(partialSel, d)
		partialGroups = append(partialGroups, clone(distinctArg))
	}
	ngroups := len(partialSel)
	addPartial := func(e map[string]any) string {
		name := fmt.Sprintf("__a%d", len(partialSel)-ngroups)
		e["alias"] = name
		partialSel = append(partialSel, e)
		return name
	}
	var rewrite func(v any) (any, error)
	rewrite = func(v any) (any, error) {
		switch x := v.(type) {
		case []any:
			out := make([]any, len(x))
			for i, c := range x {
				r, err := rewrite(c)
				if err != nil {
					return nil, err
				}
				out[i] = r
			}
			return out, nil
		case map[string]any:
			if _, isExpr := x["class"]; isExpr {
				c := canon(x)
				for i := range groups {
					if c == gcanon[i] {
						return colref(fmt.Sprintf("__g%d", i)), nil
					}
				}
				switch x["class"] {
				case "COLUMN_REF":
					return nil, fallback(fmt.Sprintf("column %s is used outside GROUP BY and aggregates in a form the planner cannot split", strings.Join(strs(x["column_names"]), ".")))
				case "FUNCTION":
					if pl.isAggregate(str(x["function_name"])) {
						if x["distinct"] == true && distinctArg != nil && !strings.EqualFold(str(x["function_name"]), "min") && !strings.EqualFold(str(x["function_name"]), "max") {
							return pl.expr(fmt.Sprintf("%s(DISTINCT __d)", strings.ToLower(str(x["function_name"]))))
						}
						return pl.combine(x, addPartial)
					}
				}
			}
			out := make(map[string]any, len(x))
			for k, c := range x {
				r, err := rewrite(c)
				if err != nil {
					return nil, err
				}
				out[k] = r
			}
			return out, nil
		}
		return v, nil
	}
	final := map[string]any{
		"type": "SELECT_NODE", "cte_map": map[string]any{"map": []any{}},
		"from_table": baseTable(PartialsTable), "where_clause": nil,
		"group_sets": clone(node["group_sets"]), "aggregate_handling": "STANDARD_HANDLING",
		"sample": nil, "qualify": nil,
	}
	var fsel []any
	for i, s := range sel {
		r, err := rewrite(s)
		if err != nil {
			return nil, nil, err
		}
		m := obj(r)
		m["alias"] = pl.cols[i].Name
		fsel = append(fsel, m)
	}
	final["select_list"] = fsel
	var fgroups []any
	for i := range groups {
		fgroups = append(fgroups, colref(fmt.Sprintf("__g%d", i)))
	}
	final["group_expressions"] = orEmpty(fgroups)
	having, err := rewrite(node["having"])
	if err != nil {
		return nil, nil, err
	}
	final["having"] = having
	var fmods []any
	if mods.distinct != nil {
		fmods = append(fmods, clone(*mods.distinct))
	}
	if mods.order != nil {
		o, err := pl.rewriteOrder(mods.order, func(e any) (any, error) {
			if m := obj(e); m["class"] == "COLUMN_REF" && len(arr(m["column_names"])) == 1 {
				for _, col := range pl.cols {
					if strings.EqualFold(col.Name, str(arr(m["column_names"])[0])) {
						if r, err := rewrite(e); err == nil {
							return r, nil
						}
						return colref(col.Name), nil
					}
				}
			}
			if _, ok := constInt(e); ok {
				return e, nil
			}
			return rewrite(e)
		})
		if err != nil {
			return nil, nil, err
		}
		fmods = append(fmods, o)
	}
	if mods.limit != nil {
		fmods = append(fmods, clone(mods.limit))
	}
	final["modifiers"] = orEmpty(fmods)

	partial := clone(node).(map[string]any)
	partial["select_list"] = partialSel
	partial["group_expressions"] = partialGroups
	if distinctArg != nil {
		all := make([]any, len(partialGroups))
		for i := range all {
			all[i] = json.Number(strconv.Itoa(i))
		}
		partial["group_sets"] = []any{all}
	}
	partial["having"] = nil
	partial["modifiers"] = []any{}
	return partial, final, nil
}

func orEmpty(a []any) []any {
	if a == nil {
		return []any{}
	}
	return a
}

func strs(v any) []string {
	var out []string
	for _, x := range arr(v) {
		out = append(out, str(x))
	}
	return out
}

// combine splits one aggregate call into partial aggregates (added to the
// partial select list) and returns the final expression over them.
func (pl *planner) combine(f map[string]any, addPartial func(map[string]any) string) (any, error) {
	name := strings.ToLower(str(f["function_name"]))
	if len(arr(obj(f["order_bys"])["orders"])) > 0 {
		return nil, fallback(fmt.Sprintf("ordered aggregate %s runs as one partition", name))
	}
	if f["distinct"] == true && name != "min" && name != "max" {
		return nil, fallback(fmt.Sprintf("%s(DISTINCT ...) runs as one partition", name))
	}
	for _, c := range funcArgs(f) {
		if pl.hasAggregate(c) || hasClass(c, "WINDOW", false) || hasClass(c, "SUBQUERY", false) {
			return nil, fallback("nested aggregates run as one partition")
		}
	}
	part := func(fn string) string {
		p := clone(f).(map[string]any)
		renameFunc(p, fn)
		p["distinct"] = false
		return ident(addPartial(p))
	}
	var text string
	switch name {
	case "sum", "min", "max", "bool_and", "bool_or", "bit_and", "bit_or", "bit_xor":
		text = fmt.Sprintf("%s(%s)", name, part(name))
	case "count", "count_star":
		text = fmt.Sprintf("CAST(sum(%s) AS BIGINT)", part(name))
	case "avg", "mean":
		s, n := part("sum"), part("count")
		text = fmt.Sprintf("sum(%s) / sum(%s)", s, n)
	default:
		return nil, fallback(fmt.Sprintf("aggregate %s has no partial form; the query runs as one partition", name))
	}
	return pl.expr(text)
}

// rewriteOrder maps each ORDER BY expression with f.
func (pl *planner) rewriteOrder(order map[string]any, f func(any) (any, error)) (map[string]any, error) {
	o := clone(order).(map[string]any)
	for _, x := range arr(o["orders"]) {
		item := obj(x)
		r, err := f(item["expression"])
		if err != nil {
			return nil, err
		}
		item["expression"] = r
	}
	return o, nil
}

// reorder handles DISTINCT, ORDER BY and LIMIT without aggregates: each
// partition keeps its own distinct rows or top rows, the final stage
// applies the same modifiers to their union.
func (pl *planner) reorder(node map[string]any, mods modifiers) (map[string]any, map[string]any, error) {
	seen := map[string]bool{}
	for _, c := range pl.cols {
		if seen[strings.ToLower(c.Name)] {
			return nil, nil, fallback("duplicate output column names run as one partition")
		}
		seen[strings.ToLower(c.Name)] = true
	}
	sel := arr(node["select_list"])
	star := hasClass(sel, "STAR", true)
	partial := clone(node).(map[string]any)
	var pmods, fmods []any
	if mods.distinct != nil {
		pmods = append(pmods, clone(*mods.distinct))
		fmods = append(fmods, clone(*mods.distinct))
	}
	var hidden []string
	if mods.order != nil {
		// Output names whose select item is not the input column of the
		// same name: DuckDB binds a bare ORDER BY name to the output alias,
		// and the planner does not bind names inside expressions itself.
		shadows := map[string]bool{}
		if !star {
			for i, s := range sel {
				m := obj(s)
				names := strs(m["column_names"])
				if m["class"] != "COLUMN_REF" || !strings.EqualFold(names[len(names)-1], pl.cols[i].Name) {
					shadows[strings.ToLower(pl.cols[i].Name)] = true
				}
			}
		}
		o, err := pl.rewriteOrder(mods.order, func(e any) (any, error) {
			if _, ok := constInt(e); ok {
				return e, nil
			}
			// A bare name that is an output column is that column, alias
			// first, as DuckDB binds it.
			if m := obj(e); m["class"] == "COLUMN_REF" {
				if names := strs(m["column_names"]); len(names) == 1 {
					for _, col := range pl.cols {
						if strings.EqualFold(col.Name, names[0]) {
							return colref(col.Name), nil
						}
					}
				}
			}
			if refsAny(e, shadows) {
				return nil, fallback("ORDER BY names a column that an output alias shadows; it runs as one partition")
			}
			c := canon(e)
			if !star {
				for i, s := range sel {
					if canon(s) == c {
						return colref(pl.cols[i].Name), nil
					}
				}
			}
			if m := obj(e); m["class"] == "COLUMN_REF" {
				names := strs(m["column_names"])
				last := names[len(names)-1]
				for _, col := range pl.cols {
					if strings.EqualFold(col.Name, last) {
						return colref(col.Name), nil
					}
				}
			}
			// A sort key that is not an output column travels with the
			// partial rows as a hidden column the final stage drops.
			if mods.distinct != nil || hasClass(e, "SUBQUERY", false) || pl.hasAggregate(e) {
				return nil, fallback("ORDER BY on an expression that is not an output column runs as one partition")
			}
			name := fmt.Sprintf("__o%d", len(hidden))
			h := clone(e).(map[string]any)
			h["alias"] = name
			partial["select_list"] = append(arr(partial["select_list"]), h)
			hidden = append(hidden, name)
			return colref(name), nil
		})
		if err != nil {
			return nil, nil, err
		}
		fmods = append(fmods, o)
		if mods.limit != nil {
			pmods = append(pmods, clone(mods.order))
		}
	}
	if mods.limit != nil {
		n, ok := constInt(mods.limit["limit"])
		off := int64(0)
		if mods.limit["offset"] != nil {
			off, ok = constInt(mods.limit["offset"])
		}
		if !ok || n < 0 || off < 0 {
			return nil, nil, fallback("LIMIT/OFFSET that are not constants run as one partition")
		}
		pl2 := clone(mods.limit).(map[string]any)
		e, err := pl.expr(strconv.FormatInt(n+off, 10))
		if err != nil {
			return nil, nil, err
		}
		pl2["limit"], pl2["offset"] = e, nil
		pmods = append(pmods, pl2)
		fmods = append(fmods, clone(mods.limit))
	}
	partial["modifiers"] = orEmpty(pmods)
	starText := "*"
	if len(hidden) > 0 {
		starText = "* EXCLUDE (" + strings.Join(hidden, ", ") + ")"
	}
	star0, err := pl.expr(starText)
	if err != nil {
		return nil, nil, err
	}
	final := map[string]any{
		"type": "SELECT_NODE", "cte_map": map[string]any{"map": []any{}}, "select_list": []any{star0},
		"from_table": baseTable(PartialsTable), "where_clause": nil, "group_expressions": []any{}, "group_sets": []any{},
		"aggregate_handling": "STANDARD_HANDLING", "having": nil, "sample": nil, "qualify": nil,
		"modifiers": orEmpty(fmods),
	}
	return partial, final, nil
}

func (pl *planner) render(partial, final map[string]any) (string, string, error) {
	p, err := deserialize(pl.ctx, pl.c, partial)
	if err != nil {
		return "", "", fmt.Errorf("render partial: %w", err)
	}
	f, err := deserialize(pl.ctx, pl.c, final)
	if err != nil {
		return "", "", fmt.Errorf("render final: %w", err)
	}
	return p, f, nil
}

// validate binds the partial and final queries and checks that the final
// output has exactly the original names and types, adding casts where a
// type differs (a count summed from partials is HUGEINT, say).
func (pl *planner) validate(p *Plan) error {
	if _, err := describe(pl.ctx, pl.c, p.Partial); err != nil {
		return fmt.Errorf("partial: %s", cleanDuckErr(err))
	}
	if err := pl.c.Exec(pl.ctx, fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s AS SELECT * FROM (%s) LIMIT 0", PartialsTable, p.Partial)); err != nil {
		return fmt.Errorf("partial: %s", cleanDuckErr(err))
	}
	defer pl.c.Exec(context.Background(), "DROP TABLE IF EXISTS "+PartialsTable)
	for range 2 {
		got, err := describe(pl.ctx, pl.c, p.Final)
		if err != nil {
			return fmt.Errorf("final: %s", cleanDuckErr(err))
		}
		if len(got) != len(pl.cols) {
			return fmt.Errorf("final has %d columns, want %d", len(got), len(pl.cols))
		}
		same := true
		for i, c := range got {
			if c.Name != pl.cols[i].Name {
				return fmt.Errorf("final column %d is %q, want %q", i+1, c.Name, pl.cols[i].Name)
			}
			if c.Type != pl.cols[i].Type {
				same = false
			}
		}
		if same {
			return nil
		}
		if err := pl.castFinal(p, got); err != nil {
			return err
		}
	}
	return errors.New("final output types differ from the query's")
}

// castFinal wraps each select item of the final query whose type differs
// in a CAST to the original type, on the parse tree, so that ORDER BY and
// LIMIT keep their meaning.
func (pl *planner) castFinal(p *Plan, got []Column) error {
	stmts, err := serialize(pl.ctx, pl.c, p.Final)
	if err != nil {
		return err
	}
	node := obj(obj(stmts[0])["node"])
	sel := arr(node["select_list"])
	if len(sel) != len(got) || hasClass(sel, "STAR", true) {
		return errors.New("final output types differ from the query's")
	}
	for i, s := range sel {
		if got[i].Type == pl.cols[i].Type {
			continue
		}
		cast, err := pl.expr(fmt.Sprintf("CAST(NULL AS %s)", pl.cols[i].Type))
		if err != nil {
			return err
		}
		m := obj(s)
		alias := m["alias"]
		m["alias"] = ""
		cast["child"] = m
		cast["alias"] = alias
		sel[i] = cast
	}
	f, err := deserialize(pl.ctx, pl.c, node)
	if err != nil {
		return err
	}
	p.Final = f
	return nil
}
