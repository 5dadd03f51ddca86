// Package partition owns the Split value — one independently retryable unit
// of work that crosses process boundaries as JSON — and the pure functions
// that cut an input into splits: whole files packed together, row-group
// ranges of large Parquet files, or a single split for the whole input.
//
// Planning here is pure: callers (connectors) read file footers and hand in
// File descriptions; nothing in this package touches the file system.
//
// partition is a leaf: it imports only the standard library. It must not
// import connectors, engine, infer or coordinator.
package partition
