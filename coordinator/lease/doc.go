// Package lease is the pure core of remote scheduling: a deterministic state
// machine that hands partitions of runs to workers as leases, and decides
// which attempt of each partition counts.
//
// It owns the rules the cluster coordinator applies to the events it
// receives over the network: worker registration, heartbeats that extend
// leases, lease expiry and reassignment, per-partition attempt limits, a
// per-run retry budget, exclusion of a worker that keeps failing a
// partition, optional speculative copies of stragglers, and the
// exactly-once rule — exactly one successful attempt per partition is
// accepted, every other attempt (expired, failed, superseded, revoked,
// late "zombie" completions) is reported for discarding. It also owns the
// JSON Snapshot of that state and Restore from it.
//
// Every input carries its own time (now); nothing here reads the wall clock,
// starts goroutines, sleeps or does I/O, so the same sequence of events
// always gives the same state. A Scheduler is not safe for concurrent use:
// the caller (the gRPC coordinator) serialises events, for example behind one
// mutex. Each event costs O(log n) or amortised O(1) in the number of
// partitions and workers (queues and heaps, no scans of all partitions),
// except the rare run-wide ones: AddRun, a run failing, Forget, Snapshot,
// Restore and RunState, which are linear in the run.
//
// lease imports only the standard library (and partition, for SplitIDs). It
// must not import engine, infer, cmd, coordinator, connectors or their
// implementations, net/http or gRPC: the network layer drives it, not the
// other way round. Results are opaque JSON (Result.Output) so that the
// coordinator can store a connectors.Manifest without this package knowing
// its shape.
package lease
