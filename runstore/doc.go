// Package runstore persists the history of pipeline runs in an embedded
// bbolt file (runs.db) under a state directory: one record per run, keyed by
// pipeline, start time and run id, with its status, times, row counts and
// the full coordinator.RunResult as JSON.
//
// It owns the file format and the one-process-at-a-time lock on the state
// directory. It must not import the engine, connectors or the CLI.
package runstore
