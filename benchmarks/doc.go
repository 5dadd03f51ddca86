// Package benchmarks owns Liminal's end-to-end benchmarks and its
// side-by-side comparisons with DuckDB alone.
//
// e2e_test.go runs whole jobs in-process through the public packages
// (connectors, coordinator, coordinator/worker, engine), from opening the
// Parquet source to the committed output, and next to each, as a sibling
// sub-benchmark, one DuckDB (the same duckdb-go build, SET threads =
// NumCPU) running the same query as COPY (query) TO 'out.parquet' over the
// same files:
//
//	BenchmarkETL/job=filter/engine=liminal
//	BenchmarkETL/job=filter/engine=duckdb
//	BenchmarkETL/job=agg/engine=liminal
//	BenchmarkETL/job=agg/engine=duckdb
//
// Each reports rows/s of input rows and cpu-s/op, the process's CPU time
// (user + system, DuckDB's threads included) per run, which a busy machine
// distorts less than wall time. Go's allocation counts (ReportAllocs) cover
// Go memory only; DuckDB allocates in C++. The Liminal side reuses one
// engine (its DuckDB instances) across iterations, as the DuckDB side reuses
// its database; opening the source (reading the footers), planning, running
// and committing are timed. Compare engines with benchstat:
//
//	go test ./benchmarks -run '^$' -bench ETL -count 10 | tee new.txt
//	benchstat -col /engine new.txt
//
// The environment chooses the data and the executor's shape:
//
//	LIMINAL_BENCH_DATA     a directory holding events/*.parquet (default:
//	                       ~/.cache/liminal/bench-<rows>, e.g. bench-1M,
//	                       generated once with the deterministic generator
//	                       and reused; with -short the benchmarks skip
//	                       instead of generating)
//	LIMINAL_BENCH_ROWS     rows to generate (default 1000000; 8 files, 16
//	                       from 10M rows on, as compare.sh)
//	LIMINAL_BENCH_WORKERS  Liminal worker slots (default NumCPU; each slot
//	                       gets NumCPU/slots DuckDB threads)
//	LIMINAL_BENCH_TARGET_ROWS  rows per partition (default: automatic)
//
// compare.sh is the side-by-side run a person makes: the CLI against
// cmd/duckdbrun on 10M rows, wall time and peak RSS, medians and ratios.
// RESULTS.md holds its figures.
//
// Package benchmarks may import anything in the module; nothing imports it.
package benchmarks
