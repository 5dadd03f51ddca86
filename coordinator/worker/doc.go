// Package worker runs partition attempts: it binds a task's sources to
// table names (DuckDB-native scans, or Arrow streams from Go), runs the
// engine's per-partition query into sink staging or a partial result, and
// implements coordinator.Executor. It is the one place that wires the
// engine (and, later, infer) to connectors.
//
// worker imports coordinator, connectors, partition and engine. It must not
// be imported by coordinator itself.
package worker
