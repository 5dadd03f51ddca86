// Package cluster runs partitions on worker processes: the gRPC service of
// `liminal coordinator --listen`, the coordinator-side Executor that hands
// a run's partitions to workers as leases, the journal that lets a
// restarted coordinator resume a run without recomputing the partitions
// whose attempts it had accepted, and the loop of `liminal worker`.
//
// The rules — leases, heartbeats, expiry and reassignment, attempt limits,
// exclusion of failing workers, speculative copies, and exactly one
// accepted attempt per partition — are coordinator/lease's; this package
// feeds it network events under one mutex and acts on its decisions.
// Every attempt stages its output under its lease token, so a late
// ("zombie") attempt of a worker thought dead never overwrites or joins
// the accepted one; the job commit stays the coordinator's (coordinator.Run).
//
// Control messages are JSON over gRPC (a registered codec; the service is
// described by hand, so no code generator is needed); partial results of
// two-stage plans travel as Arrow IPC streams inside the completion.
//
// cluster imports coordinator, coordinator/lease, connectors and partition,
// gRPC and bbolt. It must not import engine, infer, api or cmd: the worker's
// executor and the run service are handed in as interfaces.
package cluster
