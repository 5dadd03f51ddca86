// Package conformance is the shared test suite every Arrow connector
// passes: RunSource for an ArrowSource and RunSink for an ArrowSink. A
// connector's test supplies a small harness (create a table with given
// rows, read a target back, list staging) and calls the suite from a
// TestXxx function.
//
// The suite checks schema discovery, column projection (pushed down, where
// the harness exposes the statements the connector sent), empty input,
// splits that cover every row exactly once, cancellation mid-read without
// goroutine leaks, NULLs, the type-mapping table, and exactly-once commits:
// idempotent Commit, a re-run with the same run id, retried attempts, a
// crash between staging and commit, and Abort leaving the target as it
// was.
//
// It imports connectors, partition, arrow-go and testing. It must not
// import engine, coordinator or a connector.
package conformance
