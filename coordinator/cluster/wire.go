package cluster

import (
	"context"
	"encoding/json"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"

	"github.com/liminal-data/liminal/partition"
)

// serviceName is the gRPC service of the coordinator.
const serviceName = "liminal.cluster.v1.Cluster"

// codecName is the gRPC content subtype of our messages.
const codecName = "json"

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }
func (jsonCodec) Unmarshal(b []byte, v any) error {
	if testHookUnmarshal != nil {
		testHookUnmarshal(len(b))
	}
	return json.Unmarshal(b, v)
}

// testHookUnmarshal, when set, sees the size of every message decoded.
var testHookUnmarshal func(n int)

func (jsonCodec) Name() string      { return codecName }
func init()                         { encoding.RegisterCodec(jsonCodec{}) }
func callOpts() []grpc.CallOption   { return []grpc.CallOption{grpc.CallContentSubtype(codecName)} }
func fullMethod(name string) string { return "/" + serviceName + "/" + name }
func invoke(ctx context.Context, cc *grpc.ClientConn, name string, req, resp any) error {
	return cc.Invoke(ctx, fullMethod(name), req, resp, callOpts()...)
}

// RegisterRequest announces a worker process.
type RegisterRequest struct {
	Worker  string `json:"worker"`
	Slots   int    `json:"slots"`
	Version string `json:"version,omitempty"`
}

// RegisterResponse tells the worker how often to heartbeat.
type RegisterResponse struct {
	HeartbeatMS int64 `json:"heartbeat_ms"`
	LeaseTTLMS  int64 `json:"lease_ttl_ms"`
}

// AcquireRequest asks for leases for the worker's free slots, waiting up
// to WaitMS when there is no work.
type AcquireRequest struct {
	Worker string `json:"worker"`
	WaitMS int64  `json:"wait_ms,omitempty"`
}

// Assignment is one leased attempt: what to run and under which token.
type Assignment struct {
	Token   uint64          `json:"token"`
	Attempt int             `json:"attempt"`
	RunID   string          `json:"run_id"`
	Task    string          `json:"task"`
	Split   partition.Split `json:"split"`
	// Recipe rebuilds the task (coordinator.Recipe); Plan is the task's
	// coordinator.TaskPlan without its splits.
	Recipe json.RawMessage `json:"recipe"`
	Plan   json.RawMessage `json:"plan"`
}

// AcquireResponse carries the granted leases (none after the wait).
type AcquireResponse struct {
	Assignments []Assignment `json:"assignments"`
}

// HeartbeatRequest extends the worker's leases; Tokens are the attempts it
// is running.
type HeartbeatRequest struct {
	Worker string   `json:"worker"`
	Tokens []uint64 `json:"tokens,omitempty"`
}

// HeartbeatResponse lists the reported attempts the worker must stop: the
// coordinator no longer holds a lease for them.
type HeartbeatResponse struct {
	Cancel []uint64 `json:"cancel,omitempty"`
}

// CompleteRequest reports a successful attempt: its coordinator.AttemptResult
// as JSON, and for a partial result of a two-stage plan its rows as an
// Arrow IPC stream.
type CompleteRequest struct {
	Worker  string          `json:"worker"`
	Token   uint64          `json:"token"`
	Result  json.RawMessage `json:"result"`
	Partial []byte          `json:"partial,omitempty"`
}

// CompleteResponse says whether the attempt was accepted; when it was not,
// the worker discards its staged output.
type CompleteResponse struct {
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason,omitempty"`
}

// FailRequest reports a failed attempt.
type FailRequest struct {
	Worker    string `json:"worker"`
	Token     uint64 `json:"token"`
	Error     string `json:"error"`
	Permanent bool   `json:"permanent,omitempty"`
	// Invalid marks errors of the spec or SQL (exit code 2).
	Invalid bool `json:"invalid,omitempty"`
}

// DeregisterRequest is a worker leaving on purpose; its leases go back to
// the queue without counting as failures.
type DeregisterRequest struct {
	Worker string `json:"worker"`
}

// Empty is a response without content.
type Empty struct{}

// RunRequest carries a REST API call to the run service (submit, get,
// cancel): the same validation, idempotency and error codes over both
// surfaces.
type RunRequest struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// RunResponse is the HTTP status and JSON body of a RunRequest.
type RunResponse struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}
