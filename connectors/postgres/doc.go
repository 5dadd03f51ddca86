// Package postgres is the connector for PostgreSQL (pgx v5): an
// ArrowSource that reads a table or a query as Arrow batches through the
// binary protocol, split into key ranges of a partition column or ctid
// block ranges and read inside one exported snapshot; and an ArrowSink that
// COPYs each partition attempt into its own UNLOGGED staging table and
// commits a run in one transaction (append, overwrite by rename, upsert
// with ON CONFLICT), recording run ids in _liminal_commits so that a
// commit is idempotent. It registers the "postgres" and "postgresql"
// schemes. Passwords come from the config's Secret and never appear in
// Describe or errors. docs/types.md has the type mapping.
//
// It imports connectors, partition, arrow-go and pgx. It must not import
// engine, coordinator or a sibling connector.
package postgres
