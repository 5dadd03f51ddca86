package api

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/liminal-data/liminal/checks"
	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/spec"
)

// Run statuses besides coordinator's final ones.
const (
	StatusQueued  = "queued"
	StatusRunning = "running"
)

// Partition and task statuses besides the final ones.
const (
	statusPending = "pending"
)

// Run is a run as the API shows it.
type Run struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// Spec is the name: of the spec; SpecName the registered spec the run
	// was submitted by (empty for an inline spec).
	Spec       string     `json:"spec"`
	SpecName   string     `json:"spec_name,omitempty"`
	Pipeline   string     `json:"pipeline"`
	Workers    int        `json:"workers"`
	TargetRows int64      `json:"target_rows,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Error      string     `json:"error,omitempty"`
	// Tasks is the progress of each task, filled when the run starts.
	Tasks []TaskProgress `json:"tasks"`
	// Result is the run's final result, once it is over.
	Result *coordinator.RunResult `json:"result,omitempty"`
}

// TaskProgress is one task of a run.
type TaskProgress struct {
	Task            string `json:"task"`
	Status          string `json:"status"`
	Plan            string `json:"plan,omitempty"`
	PartitionsTotal int    `json:"partitions_total"`
	PartitionsDone  int    `json:"partitions_done"`
	RowsTotal       int64  `json:"rows_total"`
	RowsIn          int64  `json:"rows_in"`
	RowsOut         int64  `json:"rows_out"`
	Retries         int    `json:"retries"`
	// Errors are the latest errors of partitions that failed (and may be
	// retried).
	Errors     []string            `json:"errors"`
	Partitions []PartitionProgress `json:"partitions,omitempty"`
}

// PartitionProgress is one partition of a task ("final" for the final
// stage of a two-stage plan).
type PartitionProgress struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	RowsIn   int64  `json:"rows_in"`
	RowsOut  int64  `json:"rows_out"`
	Error    string `json:"error,omitempty"`
}

// request is what a run was submitted with.
type request struct {
	Spec       string `json:"spec,omitempty"`
	SpecName   string `json:"spec_name,omitempty"`
	Pipeline   string `json:"pipeline,omitempty"`
	RunID      string `json:"run_id,omitempty"`
	Workers    int    `json:"workers,omitempty"`
	TargetRows int64  `json:"target_rows,omitempty"`
	// SpecFile is the absolute path an inline spec was read from: its
	// relative paths resolve against its directory, and messages name it.
	SpecFile string `json:"spec_file,omitempty"`
	// Env holds the submitter's values of the ${VAR}s the spec refers to.
	Env map[string]string `json:"env,omitempty"`
}

// run is a run's state in the server. mu guards info and the progress;
// the server's mutex guards the queue that holds it.
type run struct {
	mu          sync.Mutex
	info        Run
	fingerprint string

	spec   *spec.Spec // nil for a run loaded from the state directory
	pi     int
	req    request
	recipe *coordinator.Recipe // how workers rebuild the run's tasks
	logs   *ring
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the run is over
}

// snapshot copies the run for a response; partitions only when detail.
func (r *run) snapshot(detail bool) Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.info
	out.Tasks = make([]TaskProgress, len(r.info.Tasks))
	for i, t := range r.info.Tasks {
		t.Errors = slices.Clone(t.Errors)
		if detail {
			t.Partitions = slices.Clone(t.Partitions)
		} else {
			t.Partitions = nil
		}
		out.Tasks[i] = t
	}
	if !detail {
		out.Result = nil
	}
	return out
}

func (r *run) finished() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return final(r.info.Status)
}

func final(status string) bool {
	switch status {
	case coordinator.StatusSucceeded, coordinator.StatusFailed, coordinator.StatusCancelled:
		return true
	}
	return false
}

// task returns the progress entry of a task, adding it when new. r.mu is
// held.
func (r *run) task(name string) *TaskProgress {
	for i := range r.info.Tasks {
		if r.info.Tasks[i].Task == name {
			return &r.info.Tasks[i]
		}
	}
	r.info.Tasks = append(r.info.Tasks, TaskProgress{Task: name, Status: statusPending, Errors: []string{}})
	return &r.info.Tasks[len(r.info.Tasks)-1]
}

// partition returns the progress entry of a task's partition, adding it
// when new. r.mu is held.
func (t *TaskProgress) partition(id string) *PartitionProgress {
	for i := range t.Partitions {
		if t.Partitions[i].ID == id {
			return &t.Partitions[i]
		}
	}
	t.Partitions = append(t.Partitions, PartitionProgress{ID: id, Status: StatusQueued})
	return &t.Partitions[len(t.Partitions)-1]
}

// refreshErrors recomputes the task's current errors. r.mu is held.
func (t *TaskProgress) refreshErrors() {
	t.Errors = t.Errors[:0]
	for _, p := range t.Partitions {
		if p.Error != "" && p.Status != coordinator.StatusSucceeded {
			t.Errors = append(t.Errors, p.ID+": "+p.Error)
		}
	}
}

// tracker records a run's progress: it is the run's coordinator.Progress
// and wraps its executor to see every partition attempt.
type tracker struct{ r *run }

var _ coordinator.Progress = tracker{}

func (tk tracker) TaskStarted(task string, partitions int, rows int64) {
	tk.r.mu.Lock()
	defer tk.r.mu.Unlock()
	t := tk.r.task(task)
	t.Status = StatusRunning
	t.PartitionsTotal, t.RowsTotal = partitions, rows
}

func (tk tracker) PartitionDone(task string, rowsIn, rowsOut int64) {
	tk.r.mu.Lock()
	defer tk.r.mu.Unlock()
	t := tk.r.task(task)
	t.PartitionsDone++
	t.RowsIn += rowsIn
	t.RowsOut += rowsOut
}

func (tk tracker) TaskDone(task string, tr coordinator.TaskResult) {
	tk.r.mu.Lock()
	defer tk.r.mu.Unlock()
	t := tk.r.task(task)
	t.Status = tr.Status
	t.Retries = tr.Retries
	if tr.Plan != "" {
		t.Plan = tr.Plan
	}
	if tr.Status == coordinator.StatusSucceeded {
		t.RowsIn, t.RowsOut = tr.RowsIn, tr.RowsOut
	}
	for i := range t.Partitions {
		p := &t.Partitions[i]
		if p.Status == StatusQueued || p.Status == StatusRunning {
			p.Status = coordinator.StatusCancelled
		}
	}
	if tr.Error != "" && len(t.Errors) == 0 {
		t.Errors = append(t.Errors, tr.Error)
	}
}

// executor wraps a run's executor to record partition attempts.
type executor struct {
	coordinator.Executor
	tk tracker
}

func (e executor) Plan(ctx context.Context, t *coordinator.Task) (*coordinator.TaskPlan, error) {
	p, err := e.Executor.Plan(ctx, t)
	if err == nil {
		e.tk.r.mu.Lock()
		tp := e.tk.r.task(t.Name)
		tp.Plan = p.Kind
		for _, s := range p.Splits {
			tp.partition(s.ID)
		}
		e.tk.r.mu.Unlock()
	}
	return p, err
}

// Check forwards data checks to the wrapped executor.
func (e executor) Check(ctx context.Context, t *coordinator.Task, plan *coordinator.TaskPlan, staged []connectors.Manifest) ([]checks.Result, error) {
	return coordinator.CheckWith(ctx, e.Executor, t, plan, staged)
}

func (e executor) Run(ctx context.Context, a coordinator.Attempt) (coordinator.AttemptResult, error) {
	id := a.Split.ID
	r := e.tk.r
	r.mu.Lock()
	t := r.task(a.Task.Name)
	p := t.partition(id)
	p.Status, p.Attempts = StatusRunning, a.Number
	if a.Number > 1 {
		t.Retries++
	}
	r.mu.Unlock()

	res, err := e.Executor.Run(ctx, a)

	r.mu.Lock()
	defer r.mu.Unlock()
	t = r.task(a.Task.Name)
	p = t.partition(id)
	switch {
	case err == nil:
		p.Status, p.RowsIn, p.RowsOut, p.Error = coordinator.StatusSucceeded, a.Split.Rows, res.RowsOut, ""
	case ctx.Err() != nil:
		p.Status = coordinator.StatusCancelled
	default:
		p.Status, p.Error = coordinator.StatusFailed, err.Error()
	}
	t.refreshErrors()
	return res, err
}
