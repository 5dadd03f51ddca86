// Package all links every connector of this build into a binary through
// blank imports; cmd/liminal imports it. Library packages must not import
// it.
package all

import (
	_ "github.com/liminal-data/liminal/connectors/duckdb"   // tables in DuckDB database files
	_ "github.com/liminal-data/liminal/connectors/file"     // parquet and csv files
	_ "github.com/liminal-data/liminal/connectors/hive"     // HiveServer2 tables and queries (Hive, Spark Thrift Server)
	_ "github.com/liminal-data/liminal/connectors/postgres" // PostgreSQL tables and queries
	_ "github.com/liminal-data/liminal/connectors/trino"    // Trino (trino://) and PrestoDB (presto://) tables and queries
)
