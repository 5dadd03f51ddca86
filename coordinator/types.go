package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/liminal-data/liminal/checks"
	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
	"github.com/liminal-data/liminal/spec"
)

// Task is one resolved SQL task: its query, the sources it reads by table
// name, its sink and partition settings.
type Task struct {
	Name      string
	Query     string
	Sources   map[string]connectors.Source
	Sink      connectors.Sink
	Partition partition.Options
	// Driving names the source to partition; "" lets the planner pick the
	// largest one the query reads.
	Driving string
	// Origin locates the task for error messages, e.g. "etl.yml:12"; "" for
	// ad-hoc runs.
	Origin string
	// Score, when set, scores the query's rows with a model before they
	// are written (a batch_inference task).
	Score *Score
	// DependsOn names tasks of the same run that must succeed first.
	DependsOn []string
	// MaxAttempts per partition (0: the coordinator's default).
	MaxAttempts int
	// RetryDelay is the first retry delay (0: the coordinator's default).
	RetryDelay time.Duration
	// Timeout bounds the task (0: none).
	Timeout time.Duration
	// Checks run on the task's staged output before it is committed.
	Checks []spec.Check
	// CheckSources are the sources checks refer to (relationships) beyond
	// the task's own.
	CheckSources map[string]connectors.Source
	// Program, when set, makes this a command or spark task: it runs the
	// program instead of a query, and has no sources or sink.
	Program *Program
	// Cleanup lists intermediate outputs (directories) removed when the
	// run ends, whatever its outcome.
	Cleanup []string
	// Recipe, when set, is how a worker process rebuilds this task
	// (cluster runs); nil for ad-hoc tasks that exist only in this process.
	Recipe *Recipe
}

// Recipe is how a remote worker rebuilds the tasks of a run: the spec as
// submitted and the settings that shaped its resolution. It crosses the
// wire as JSON. Paths in the spec resolve against File's directory, which
// every worker must see (a shared file system).
type Recipe struct {
	// Spec is the YAML text, File its absolute path (for relative paths
	// and file:line messages).
	Spec []byte `json:"spec"`
	File string `json:"file"`
	// Pipeline is the index of the pipeline in the spec.
	Pipeline int `json:"pipeline"`
	// Env holds the submitter's values of the ${VAR}s the spec refers to,
	// so that every process interpolates the spec alike. Secrets named by
	// secret_env or secret_file are read where the task runs.
	Env           map[string]string `json:"env,omitempty"`
	TargetRows    int64             `json:"target_rows,omitempty"`
	MaxPartitions int               `json:"max_partitions,omitempty"`
	WorkDir       string            `json:"work_dir,omitempty"`
}

// Score is the model step of a batch_inference task.
type Score struct {
	Model spec.Model
	// Dir resolves the model's relative paths (the spec's directory).
	Dir    string
	Output spec.Output
	// Origin locates the model block for error messages.
	Origin string
}

// TaskPlan is how a task runs: the partitions of stage 1 and whether a
// final stage follows. Exec is the executor's own plan, opaque here and
// serializable so that remote workers can receive it.
type TaskPlan struct {
	Kind    string            `json:"kind"`
	Reason  string            `json:"reason,omitempty"`
	Driving string            `json:"driving,omitempty"`
	Splits  []partition.Split `json:"splits"`
	Final   bool              `json:"final"`
	Columns json.RawMessage   `json:"columns,omitempty"`
	Exec    json.RawMessage   `json:"exec"`
}

// Warning is the log and --json warning of a plan that runs unsplit.
func (p *TaskPlan) Warning() string {
	if p.Kind != "single" {
		return ""
	}
	return "query runs as one partition: " + p.Reason
}

// Attempt is one try of one partition of a task (Stage 1), or of the final
// stage (Stage 2, reading Partials).
type Attempt struct {
	RunID    string
	Task     *Task
	Plan     *TaskPlan
	Stage    int
	Split    partition.Split
	Number   int      // 1-based attempt number
	Partials []string // stage 2: the partial results of stage 1, in split order
}

// AttemptResult is what a successful attempt produced: a staged sink
// manifest, or a partial result for the final stage.
type AttemptResult struct {
	Manifest *connectors.Manifest
	Partial  string
	RowsIn   int64
	RowsOut  int64
}

// Checker is an Executor that can evaluate a task's data checks on its
// staged output (the manifests of the attempts about to be committed).
type Checker interface {
	Check(ctx context.Context, t *Task, plan *TaskPlan, staged []connectors.Manifest) ([]checks.Result, error)
}

// CheckWith evaluates a task's data checks with e when e is a Checker:
// what executors that wrap another one call from their own Check.
func CheckWith(ctx context.Context, e Executor, t *Task, plan *TaskPlan, staged []connectors.Manifest) ([]checks.Result, error) {
	c, ok := e.(Checker)
	if !ok {
		return nil, connectors.Permanent(errors.New("this executor cannot evaluate data checks"))
	}
	return c.Check(ctx, t, plan, staged)
}

// Executor plans tasks and runs attempts; coordinator/worker implements it
// with the engine. Implementations are safe for concurrent use.
type Executor interface {
	Plan(ctx context.Context, t *Task) (*TaskPlan, error)
	Run(ctx context.Context, a Attempt) (AttemptResult, error)
	// Release frees partial results once their task is over, whether it
	// succeeded or not.
	Release(ctx context.Context, partials []string) error
	// Slots is how many attempts run at once.
	Slots() int
}

// Status of a run or task.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
	// StatusSkipped is a task that did not run because a task it depends
	// on failed.
	StatusSkipped = "skipped"
)

// RunResult is the machine-readable outcome of a run (--json).
type RunResult struct {
	RunID      string       `json:"run_id"`
	Spec       string       `json:"spec,omitempty"`
	Pipeline   string       `json:"pipeline,omitempty"`
	Status     string       `json:"status"`
	ExitCode   int          `json:"exit_code"`
	Error      string       `json:"error,omitempty"`
	StartedAt  time.Time    `json:"started_at"`
	FinishedAt time.Time    `json:"finished_at"`
	DurationMS int64        `json:"duration_ms"`
	Tasks      []TaskResult `json:"tasks"`
}

// TaskResult is one task's part of a RunResult.
type TaskResult struct {
	Task            string                 `json:"task"`
	Status          string                 `json:"status"`
	Plan            string                 `json:"plan,omitempty"`
	Partitions      int                    `json:"partitions"`
	Attempts        int                    `json:"attempts"`
	Retries         int                    `json:"retries"`
	RowsIn          int64                  `json:"rows_in"`
	RowsInEstimated bool                   `json:"rows_in_estimated,omitempty"`
	RowsOut         int64                  `json:"rows_out"`
	BytesOut        int64                  `json:"bytes_out"`
	DurationMS      int64                  `json:"duration_ms"`
	Outputs         []connectors.Committed `json:"outputs"`
	Warnings        []string               `json:"warnings,omitempty"`
	Checks          []checks.Result        `json:"checks,omitempty"`
	Error           string                 `json:"error,omitempty"`
}
