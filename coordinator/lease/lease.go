package lease

import (
	"errors"
	"fmt"
	"time"

	"github.com/liminal-data/liminal/partition"
)

// PartitionID names a partition within a run: the Split ID.
type PartitionID string

// WorkerID names a worker process. A worker that registers again under the
// same ID is a new incarnation: the leases of the old one are expired.
type WorkerID string

// Token identifies one lease, and so one attempt, for the life of the
// coordinator, across restarts: the high 24 bits are the coordinator's
// generation (bumped by every Restore), the low 40 bits a sequence number.
// Staging locations should be keyed by the token (or by generation and
// attempt), never by the attempt number alone.
type Token uint64

const seqBits = 40

// Generation is the coordinator incarnation that issued the token.
func (t Token) Generation() uint32 { return uint32(uint64(t) >> seqBits) }

// String renders the token as generation.sequence, e.g. "3.1042".
func (t Token) String() string {
	return fmt.Sprintf("%d.%d", t.Generation(), uint64(t)&(1<<seqBits-1))
}

// ErrorKind classifies a failed attempt. The gRPC layer maps errors with
// errors.Is(err, connectors.ErrTransient) / ErrPermanent onto it.
type ErrorKind int

const (
	// Transient failures are retried, within the partition's attempt limit
	// and the run's retry budget.
	Transient ErrorKind = iota + 1
	// Permanent failures fail the partition, and with it the run, at once.
	Permanent
)

// String names the kind.
func (k ErrorKind) String() string {
	switch k {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// Reason says why an event on a lease was accepted or rejected, and why an
// attempt is to be discarded.
type Reason string

// Reasons.
const (
	ReasonAccepted Reason = "accepted"
	// ReasonUnknown: the token was never issued, or belongs to a run that
	// was forgotten, or to leases dropped by Restore(DropLeases).
	ReasonUnknown Reason = "unknown lease"
	// ReasonDuplicate: this very attempt was accepted before. Its output IS
	// the accepted one; the caller must not discard it (idempotent ack).
	ReasonDuplicate Reason = "duplicate completion"
	// ReasonExpired: the lease's TTL passed before the event (a zombie).
	ReasonExpired Reason = "lease expired"
	// ReasonSuperseded: another attempt of the partition was accepted.
	ReasonSuperseded Reason = "superseded by another attempt"
	// ReasonFailed: the attempt had already reported a failure.
	ReasonFailed Reason = "attempt failed"
	// ReasonRevoked: the coordinator took the lease back (worker
	// deregistered or re-registered, run failed or forgotten, Restore).
	ReasonRevoked Reason = "lease revoked"
)

// Errors returned by the Scheduler's events.
var (
	// ErrUnknownWorker: the worker is not registered (never was, expired,
	// deregistered, or dropped by Restore); it must Register again.
	ErrUnknownWorker = errors.New("unknown worker")
	// ErrUnknownRun: no such run.
	ErrUnknownRun = errors.New("unknown run")
)

// Options configure a Scheduler. Zero values take the defaults noted.
type Options struct {
	// LeaseTTL is how long a lease (and a worker) lives without a
	// heartbeat. Default 30s.
	LeaseTTL time.Duration `json:"lease_ttl"`
	// MaxAttemptsPerPartition is how many attempts of a partition may fail
	// (transient error or expiry) before the partition, and its run, fail.
	// Revoked attempts (deregistration, Restore) do not count. Default 4.
	MaxAttemptsPerPartition int `json:"max_attempts_per_partition"`
	// MaxFailuresPerWorker: a worker whose attempts of a partition failed
	// or expired this many times is not given that partition again. If that
	// leaves no registered worker eligible, the partition fails. Default 2.
	MaxFailuresPerWorker int `json:"max_failures_per_worker"`
	// RunRetryBudget caps the retries (re-queues after a failed or expired
	// attempt) of one run; once exhausted, the next failure fails the run.
	// 0: no cap beyond the per-partition limit.
	RunRetryBudget int `json:"run_retry_budget"`
	// Speculative enables speculative copies of stragglers.
	Speculative bool `json:"speculative"`
	// SpeculateAfter: an attempt running longer than this factor times the
	// median duration of the run's finished partitions gets one copy on
	// another worker; the first to complete wins. Default 1.5.
	SpeculateAfter float64 `json:"speculate_after"`
	// SpeculateMinDone is the fraction of a run's partitions that must be
	// done before any copy is planned, so that the median means something.
	// Default 0.5.
	SpeculateMinDone float64 `json:"speculate_min_done"`
}

func (o Options) withDefaults() Options {
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 30 * time.Second
	}
	if o.MaxAttemptsPerPartition <= 0 {
		o.MaxAttemptsPerPartition = 4
	}
	if o.MaxFailuresPerWorker <= 0 {
		o.MaxFailuresPerWorker = 2
	}
	if o.RunRetryBudget < 0 {
		o.RunRetryBudget = 0
	}
	if o.SpeculateAfter <= 0 {
		o.SpeculateAfter = 1.5
	}
	if o.SpeculateMinDone <= 0 || o.SpeculateMinDone > 1 {
		o.SpeculateMinDone = 0.5
	}
	return o
}

// Lease is the right of one worker to run one attempt of one partition
// until Expires. It is a value: Expires is as of when it was returned;
// heartbeats move it (Heartbeat returns the new time).
type Lease struct {
	Token     Token       `json:"token"`
	Run       string      `json:"run"`
	Partition PartitionID `json:"partition"`
	// Attempt is the 1-based attempt number of the partition, for people
	// and logs; unique per partition except after a Restore from an older
	// snapshot, which is why staging is keyed by Token.
	Attempt     int       `json:"attempt"`
	Worker      WorkerID  `json:"worker"`
	Speculative bool      `json:"speculative,omitempty"`
	Granted     time.Time `json:"granted"`
	Expires     time.Time `json:"expires"`
}

// Result is what a successful attempt reports. Output is opaque to this
// package: the coordinator stores there the JSON of its AttemptResult (a
// staged connectors.Manifest or a partial result).
type Result struct {
	Output  []byte `json:"output,omitempty"`
	RowsIn  int64  `json:"rows_in,omitempty"`
	RowsOut int64  `json:"rows_out,omitempty"`
}

// Attempt is the accepted attempt of a partition: the one whose staged
// output the job commit publishes.
type Attempt struct {
	Lease
	Finished time.Time `json:"finished"`
	Result   Result    `json:"result"`
}

// Discard is an attempt whose output must never be committed: the caller
// deletes its staging (and, when Running, tells the worker to cancel it).
// Every lease that does not end accepted is reported exactly once.
type Discard struct {
	Lease  Lease  `json:"lease"`
	Reason Reason `json:"reason"`
	// Running is set when the worker may still be executing the attempt
	// (expired, superseded or revoked leases): its staging may still grow
	// after the discard, so the job's final staging cleanup must sweep it.
	Running bool `json:"running,omitempty"`
}

// State of a partition.
type State int

// Partition states.
const (
	Pending State = iota
	Leased
	Done
	Failed
)

var stateNames = [...]string{"pending", "leased", "done", "failed"}

// String names the state.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText renders the state by name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown partition state %q", b)
}

// PartitionStatus is one partition's part of a RunStatus.
type PartitionStatus struct {
	ID       PartitionID `json:"id"`
	State    State       `json:"state"`
	Attempts int         `json:"attempts"` // leases issued
	Failures int         `json:"failures"` // failed or expired attempts
	Running  int         `json:"running"`  // active leases (2 with a copy)
	Accepted *Attempt    `json:"accepted,omitempty"`
}

// RunStatus is a run's progress.
type RunStatus struct {
	ID         string            `json:"id"`
	Pending    int               `json:"pending"`
	Leased     int               `json:"leased"`
	Done       int               `json:"done"`
	Failed     int               `json:"failed"`
	Retries    int               `json:"retries"`
	Error      string            `json:"error,omitempty"`
	Partitions []PartitionStatus `json:"partitions"`
}

// SplitIDs returns the partition IDs of splits, in order.
func SplitIDs(splits []partition.Split) []PartitionID {
	ids := make([]PartitionID, len(splits))
	for i, s := range splits {
		ids[i] = PartitionID(s.ID)
	}
	return ids
}
