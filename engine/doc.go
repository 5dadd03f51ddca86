// Package engine is the vectorized partition executor: each partition runs
// as one DuckDB query over Arrow-columnar data. DuckDB scans Parquet and CSV
// natively (projection and filter pushdown, row-group ranges) and writes the
// staged output itself with COPY; Arrow record batches cross into Go only
// where Go code must touch them (sources DuckDB cannot read, sinks written
// from Go), through DuckDB's C API (duckdb-go-bindings: Arrow streams in and
// out, streamed results) and never through temporary
// files. The planner (PlanSQL) decides, on DuckDB's own parse tree, whether a
// query is partition-local or needs a partial and a final stage, so that a
// partitioned run always gives the answer of one query over the whole input.
//
// engine imports partition, arrow-go and duckdb-go-bindings (built with the
// duckdb_arrow tag). It must not import
// connectors, coordinator or infer: it declares the small interfaces it
// needs (BatchWriter) instead.
package engine
