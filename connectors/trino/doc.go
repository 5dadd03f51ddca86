// Package trino is the source connector for Trino (trino://) and PrestoDB
// (presto://): it reads a table or a query as Arrow record batches
// through github.com/trinodb/trino-go-client.
//
// URIs: trino://user@host:port/catalog/schema?table=T or ?query=SQL
// (presto:// alike). The password comes from the spec's secret
// (SourceConfig.Secret), never from logs: with a password the connection
// is HTTPS only, Describe shows no password and errors have it replaced by
// "xxxxx". Options (URI parameters or the spec's options, which win):
//
//	table, query        what to read (exactly one)
//	partition_column    split into N parallel range queries on this numeric,
//	                    date or timestamp column; NULLs go to the first split
//	partitions          N; default from partition.Options.TargetRows and a
//	                    row count, else enough splits for the worker slots
//	lower_bound,        the range to cut instead of min/max; rows outside
//	upper_bound         still land in the first or last split
//	pushdown=whole      one split running the user's query as written, so
//	                    heavy SQL (joins, aggregates) stays in Trino
//	batch_rows          rows per Arrow batch (default 8192)
//	ssl                 true: HTTPS without a password
//	retry_timeout       how long the client retries a refused connection or
//	                    a 502/503/504 (default 30s)
//	session_properties  passed to the client (k:v;k:v)
//
// Splits carry their predicate in Attrs["where"]; Read selects only the
// requested columns (projection pushed into the SQL) and streams the
// result: rows are converted as trino-go-client fetches result pages, so
// memory stays at one page plus one batch. Cancelling the context or
// releasing the reader early cancels the query on the server.
//
// Schema comes from DESCRIBE OUTPUT of the prepared relation. Types:
//
//	boolean                     bool
//	tinyint/smallint/integer/bigint  int8/int16/int32/int64
//	real, double                float32, float64
//	decimal(p,s)                decimal128(p,s)
//	varchar, char               string
//	varbinary                   binary
//	date                        date32
//	timestamp(p)                timestamp[us] for p <= 6, timestamp[ns] for
//	                            p 7-12 (truncated to ns); wall clock, no zone
//	timestamp(p) with time zone timestamp[us or ns, UTC]: the instant
//	time(p)                     time64[us] (p <= 6) or time64[ns]
//	time with time zone         string, e.g. "12:34:56.789+05:30"
//	uuid, json, ipaddress,      string (json as its JSON text)
//	interval, geometry
//	array(T)                    list<T>
//	map(K,V)                    map<K,V>, entries sorted by key text
//	row(a T, ...)               struct<a: T, ...> (anonymous fields: field0 ...)
//	HyperLogLog and other       binary (their serialized form)
//	  types without text
//
// Errors: refused connections, 5xx gateway/unavailable answers and
// Trino's SERVER_STARTING_UP, NO_NODES_AVAILABLE, REMOTE_* and similar
// are connectors.Transient; SQL and user errors carry Trino's message and
// are connectors.Permanent.
//
// PrestoDB speaks Trino's protocol before the rename: presto:// URIs use
// a registered trino-go-client custom client ("custom_client=presto")
// whose transport renames X-Trino-* request headers to X-Presto-* (and
// back on responses) and rewrites the type signatures in responses.
//
// It imports connectors and partition; it must not import engine,
// coordinator, infer or another connector.
package trino
