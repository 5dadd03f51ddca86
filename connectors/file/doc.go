// Package file is the connector for local Parquet and CSV files: a source
// that DuckDB scans natively (whole files or row-group ranges through
// file_row_number) and a sink that DuckDB writes with COPY into per-attempt
// staging, published by a journaled, roll-forward commit with a _SUCCESS
// manifest. It registers the "file" scheme (plain paths and file:// URIs).
//
// A directory of Parquet files in Hive layout (dir/dt=2024-01-01/country=IL/
// part-*.parquet, as Spark and Hive write it) reads with its partition
// columns, typed from the partition_types option or inferred, NULL for
// __HIVE_DEFAULT_PARTITION__; DuckDB prunes the files of partitions the
// query's filters exclude before opening them (see hiveLayout).
//
// Sink modes: error, append, overwrite and, with partition_by,
// overwrite_partitions (the commit replaces only the partition directories
// the run wrote, keeps the others, and is idempotent per run id). upsert
// is refused at open: it needs a database sink.
//
// It imports connectors, partition, arrow-go and duckdb-go (for footers and
// CSV sniffing). It must not import engine, coordinator or a sibling
// connector.
package file
