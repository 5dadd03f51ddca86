package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/liminal-data/liminal/checks"
	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/coordinator"
)

// Local is the coordinator's own executor (coordinator/worker on an
// engine): it plans tasks, runs final stages and data checks, and holds
// the partial results workers send.
type Local interface {
	coordinator.Executor
	ImportPartial(ctx context.Context, in io.Reader) (string, int64, error)
}

// Executor runs the partitions of a coordinator run on worker processes:
// stage-1 attempts of tasks that have a Recipe become leases; planning,
// final stages, checks and tasks without a recipe run on Local.
type Executor struct {
	srv   *Server
	local Local

	mu   sync.Mutex
	runs map[string]bool
}

var (
	_ coordinator.Executor = (*Executor)(nil)
	_ coordinator.Checker  = (*Executor)(nil)
)

// Executor returns an executor over the server's workers.
func (s *Server) Executor(local Local) *Executor {
	return &Executor{srv: s, local: local, runs: map[string]bool{}}
}

// Plan implements coordinator.Executor.
func (e *Executor) Plan(ctx context.Context, t *coordinator.Task) (*coordinator.TaskPlan, error) {
	return e.local.Plan(ctx, t)
}

// Slots implements coordinator.Executor: every partition of a task is
// handed to the scheduler at once; workers pull them as they have room.
func (e *Executor) Slots() int { return 1 << 16 }

// MetricSlots is 0: the slots of a cluster are its workers', not this
// process's (liminal_cluster_workers counts them).
func (e *Executor) MetricSlots() int { return 0 }

// Release implements coordinator.Executor.
func (e *Executor) Release(ctx context.Context, partials []string) error {
	return e.local.Release(ctx, partials)
}

// Check implements coordinator.Checker.
func (e *Executor) Check(ctx context.Context, t *coordinator.Task, plan *coordinator.TaskPlan, staged []connectors.Manifest) ([]checks.Result, error) {
	c, ok := e.local.(coordinator.Checker)
	if !ok {
		return nil, fmt.Errorf("the coordinator's executor cannot run data checks")
	}
	return c.Check(ctx, t, plan, staged)
}

// Run implements coordinator.Executor.
func (e *Executor) Run(ctx context.Context, a coordinator.Attempt) (coordinator.AttemptResult, error) {
	if a.Stage != 1 || a.Task.Recipe == nil {
		return e.local.Run(ctx, a)
	}
	e.mu.Lock()
	e.runs[a.RunID] = true
	e.mu.Unlock()
	key := fmt.Sprintf("%s/%d", a.Task.Name, a.Stage)
	ch, release, err := e.srv.waitFor(a, key)
	if err != nil {
		return coordinator.AttemptResult{}, err
	}
	defer release()
	select {
	case o := <-ch:
		if o.err != nil {
			return coordinator.AttemptResult{}, o.err
		}
		return e.materialize(ctx, o.acc)
	case <-ctx.Done():
		return coordinator.AttemptResult{}, ctx.Err()
	}
}

// materialize turns an accepted attempt into the result the coordinator
// commits: the staged manifest as the worker reported it, or the partial
// result loaded into the local engine for the final stage.
func (e *Executor) materialize(ctx context.Context, acc *Accepted) (coordinator.AttemptResult, error) {
	var res coordinator.AttemptResult
	if err := json.Unmarshal(acc.Result, &res); err != nil {
		return res, permanent(fmt.Errorf("accepted attempt: %w", err))
	}
	res.Partial = ""
	if acc.Partial != "" {
		f, err := os.Open(acc.Partial)
		if err != nil {
			return res, permanent(fmt.Errorf("partial result: %w", err))
		}
		defer f.Close()
		name, _, err := e.local.ImportPartial(ctx, f)
		if err != nil {
			return res, err
		}
		res.Partial = name
	}
	return res, nil
}

// Close forgets the journal of the runs this executor ran: they are over
// (a coordinator that stops on purpose cancels its runs; one that is
// killed never gets here, and resumes them).
func (e *Executor) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var first error
	for id := range e.runs {
		if err := e.srv.cfg.Journal.DeleteRun(id); err != nil && first == nil {
			first = err
		}
	}
	return first
}
