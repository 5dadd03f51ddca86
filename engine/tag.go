//go:build !duckdb_arrow

package engine

// DuckDB's Arrow interface in duckdb-go-bindings is behind the duckdb_arrow
// build tag: build with `-tags duckdb_arrow` (the Makefile sets it in GOFLAGS).
var _ = liminal_needs_the_build_tag_duckdb_arrow
