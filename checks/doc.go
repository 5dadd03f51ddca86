// Package checks owns data checks on a task's output: row_count,
// not_null, unique, accepted_values, relationships and custom sql
// assertions (spec.Check). Each check is one SQL query run by DuckDB over
// table expressions the caller hands in (the task's staged output, and
// the tables a check may refer to); no row is looked at in Go. Results
// say whether each check passed, how many failures it found, a few
// offending values and a one-line message; Blocking picks the results
// that must stop the commit.
//
// checks depends on the standard library and spec only: it must not
// import coordinator, engine, connectors or cmd. The caller owns the
// DuckDB connection (a Querier: the engine's connections, which stream
// results as Arrow) and decides what a failed check does.
package checks
