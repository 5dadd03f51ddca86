// Package file is the connector for local Parquet and CSV files: a source
// that DuckDB scans natively (whole files or row-group ranges through
// file_row_number) and a sink that DuckDB writes with COPY into per-attempt
// staging, published by a journaled, roll-forward commit with a _SUCCESS
// manifest. It registers the "file" scheme (plain paths and file:// URIs).
//
// It imports connectors, partition, arrow-go and go-duckdb (for footers and
// CSV sniffing). It must not import engine, coordinator or a sibling
// connector.
package file
