// Package coordinator runs jobs: it resolves a spec's tasks to sources and
// sinks, asks an Executor for each task's plan (stages and partitions), runs
// the partitions on a pool of worker slots with retries (transient errors
// back off and retry, permanent ones fail fast), lets exactly one successful
// attempt per partition count, commits the sink once, and reports progress
// and a machine-readable RunResult. A failed or cancelled run aborts its
// staging and leaves earlier output as it was.
//
// coordinator imports partition, connectors and spec. It must not import
// engine or infer: coordinator/worker wires the engine in behind the
// Executor interface.
package coordinator
