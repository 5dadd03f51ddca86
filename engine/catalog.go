package engine

import "strings"

// fnClass is what the planner knows of a function name from DuckDB's own
// catalog (duckdb_functions()): the kinds of its overloads, with macros
// classified by what their definitions expand to. A name can be several
// kinds (histogram is an aggregate and a table macro).
type fnClass uint8

const (
	fnScalar    fnClass = 1 << iota // row-wise: a scalar function, or a macro over scalars
	fnAggregate                     // an aggregate, or a macro whose body aggregates
	fnWindow                        // a window function
	fnTable                         // a table function or table macro
	fnPragma                        // a pragma
)

// catalogClass classifies a function name (case-insensitive); ok is false
// for a name DuckDB's catalog does not have.
func catalogClass(name string) (fnClass, bool) {
	c, ok := catalogFunctions[strings.ToLower(name)]
	return c, ok
}

// isAggregateName reports whether any overload of name aggregates.
func isAggregateName(name string) bool {
	c, _ := catalogClass(name)
	return c&fnAggregate != 0
}
