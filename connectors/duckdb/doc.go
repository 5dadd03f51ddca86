// Package duckdb is the connector for tables in DuckDB database files
// (duckdb:///abs/path.duckdb?table=T, or duckdb://rel/path.duckdb?table=T
// resolved against the spec's directory): an ArrowSource that reads a table
// through its own duckdb-go instance in rowid-range splits, and an
// ArrowSink that stages each partition attempt in a table inside the file
// and commits a run in one transaction (append or overwrite), recording
// run ids in _liminal_commits so that a commit is idempotent. DuckDB
// allows one writing process per file; the file is opened per operation
// and shared by the sources and sinks of a process. It registers the
// "duckdb" scheme.
//
// It imports connectors, partition, arrow-go and duckdb-go. It must not
// import engine, coordinator or a sibling connector.
package duckdb
