// Package hive is the source connector for HiveServer2 (Apache Hive and the
// Spark Thrift Server): URIs hive://[user@]host:port/db?table=T or
// ?query=SQL. It speaks the HiveServer2 Thrift protocol through gohive's
// generated client and SASL transport, and turns the server's columnar
// fetch results straight into Arrow record batches (fetch_size rows each,
// 10,000 by default), so that a split streams without being held whole.
//
// Splits: one per Hive partition of a partitioned table (SHOW PARTITIONS;
// the split's query adds the partition predicate), or key ranges of an
// integer partition_column (min/max; NULLs go to the first split), or one
// split for the whole source.
//
// Types: tinyint/smallint/int/bigint → int8/16/32/64, float/double →
// float32/64, decimal(p,s) → decimal128(p,s), boolean, string/varchar/char →
// utf8, binary, date → date32, timestamp → timestamp[us] without a zone:
// HiveServer2 sends timestamps as text in the server's session time zone
// (Hive TIMESTAMP is zone-less wall-clock time; Spark renders its
// TIMESTAMP in spark.sql.session.timeZone), and the connector keeps that
// wall-clock value as is, with no conversion. Hive 3's timestamp with local
// time zone → timestamp[us, UTC]. array/map/struct arrive as JSON-like text;
// their element types come from DESCRIBE (tables) or DESCRIBE QUERY (Spark,
// queries) and the text is parsed into list/map/struct. When the element
// types are unknown (a query on a server without DESCRIBE QUERY) they stay
// utf8 text. Intervals, unions and other types are utf8 text.
//
// Errors: transport failures and the server's connection/resource SQL
// states are connectors.ErrTransient; SQL the server rejects is
// connectors.ErrPermanent with the server's message. The password
// (SourceConfig.Secret) is never logged or put in an error.
//
// It imports connectors and partition, never engine, coordinator or a
// sibling connector.
package hive
