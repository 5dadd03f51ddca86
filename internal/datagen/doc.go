// Package datagen owns the deterministic example and benchmark dataset used by
// the README quick-start, tests and benchmarks.
//
// Generate writes an "events" fact table split into Files files and a
// "customers" dimension:
//
//	Dir/events/part-00000.parquet ... part-NNNNN.parquet
//	Dir/customers/customers.parquet
//
// (or part-NNNNN.csv plus customers.csv next to customers.parquet when
// Options.Format is "csv").
//
// The events table (one row per user interaction, in event_id order):
//
//	event_id    BIGINT         0..Rows-1, unique, contiguous across files
//	customer_id INTEGER        1..Customers; skewed: activity density ~ 1/sqrt(rank),
//	                           so the top 1% of customers make ~10% of events
//	ts          TIMESTAMP      2024-01-01 .. 2024-03-30, rising with event_id like an
//	                           append-only log (±30 s jitter), traffic growing 50% over
//	                           the 90 days, daily cycle peaking at 12:00 UTC
//	dt          DATE           ts::DATE
//	event_type  VARCHAR        view 62%, click 24%, add_to_cart 9%, purchase 4.5%, refund 0.5%
//	country     VARCHAR        15 ISO codes (US 28% ... SE 2%); the customer's home
//	                           country for ~95% of events
//	device      VARCHAR        android 42%, ios 38%, web 20%; ~2% NULL
//	amount      DOUBLE         price*quantity for purchases, its negation for refunds,
//	                           0 otherwise; cents
//	quantity    INTEGER        1..10 (mostly 1); NULL for view and click
//	session_ms  BIGINT         log-normal, median 45 s
//	is_mobile   BOOLEAN        device <> 'web'; NULL when device is NULL
//	price       DECIMAL(10,2)  log-normal, median 24.99, 0.99..9999.99; ~1% NULL
//
// The customers table (customer_id 1..Customers):
//
//	customer_id    INTEGER  unique
//	name           VARCHAR  first and last name
//	segment        VARCHAR  consumer 80%, smb 16%, enterprise 4%
//	signup_date    DATE     2019-01-01 .. 2023-12-31
//	country        VARCHAR  home country, same weights as events
//	lifetime_value DOUBLE   log-normal by segment, higher for active customers; ~1.5% NULL
//
// All data is produced by embedded DuckDB with SQL over range(...). Every
// value is derived from the row index (or customer id) and Options.Seed by an
// integer mixing function written out in SQL (the 32-bit "lowbias32"
// xorshift-multiply hash, evaluated on UBIGINT so that nothing overflows).
// DuckDB's random() and hash() are never used: random() is not reproducible
// and hash() may change between DuckDB versions. The same Options therefore
// give byte-identical files on every run with the same DuckDB build,
// independent of Options.Threads.
//
// A row's values depend only on its event_id (or customer_id), Seed and
// Customers, and ts also on Rows (the rows are spread over the period);
// Files, RowGroupRows, Format and Threads change the layout, never a value.
//
// Each file is written by one COPY ... TO statement into a temporary name in
// its final directory; the temporary files are renamed to their final names
// only after every file was written, so an interrupted or cancelled run never
// leaves a partial file under a final name. Memory stays bounded for any row
// count because DuckDB streams each COPY row group by row group. DuckDB's
// range() source is single-threaded, so parallelism comes from writing up to
// Options.Threads files at once.
//
// Categorical choices (event type, country, device, segment, NULL flags) are
// made with integer comparisons on hash bits, so they do not depend on
// floating-point rounding. Continuous values (prices, amounts, session
// lengths, lifetime values) use ln/exp/cos/sin on top of those bits and are
// rounded, so they are reproducible on one platform; across libm
// implementations a last-place difference could in rare ties change a cent.
//
// datagen must not import any other liminal package: it sits below everything
// that consumes the dataset (examples, tests, benchmarks) and only depends on
// the standard library and the DuckDB driver. dep_test.go enforces this.
package datagen
