package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/liminal-data/liminal/checks"
	"github.com/liminal-data/liminal/connectors"
)

// Options tune a coordinator.
type Options struct {
	// MaxAttempts per partition (default 3): transient errors are retried
	// until then; permanent errors fail the task at once.
	MaxAttempts int
	// Backoff is the first retry delay (default 500ms); it doubles per
	// retry, with jitter, up to 30s.
	Backoff  time.Duration
	Logger   *slog.Logger
	Progress Progress
}

// Coordinator runs tasks through an Executor.
type Coordinator struct {
	exec Executor
	opts Options
}

// New returns a coordinator over exec.
func New(exec Executor, o Options) *Coordinator {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = nopProgress{}
	}
	return &Coordinator{exec: exec, opts: o}
}

// Run runs tasks under runID and returns the result. Tasks run as soon as
// every task they depend on has succeeded, independent ones concurrently
// (they share the executor's slots); a task whose dependency failed is
// skipped, and the run fails. Results keep the order of tasks. Run never
// panics on a task's panic: a worker panic becomes that partition's
// permanent error with its stack.
func (c *Coordinator) Run(ctx context.Context, runID, pipeline string, tasks []*Task) *RunResult {
	res := &RunResult{RunID: runID, Pipeline: pipeline, Status: StatusSucceeded, StartedAt: time.Now().UTC()}
	log := c.opts.Logger.With("run_id", runID)
	log.Info("run started", "pipeline", pipeline, "tasks", len(tasks))
	defer func() {
		for _, t := range tasks {
			for _, p := range t.Cleanup {
				if err := os.RemoveAll(p); err != nil {
					log.Warn("remove intermediate output", "task", t.Name, "path", p, "error", err)
				}
			}
		}
	}()
	results := make([]TaskResult, len(tasks))
	errs := make([]error, len(tasks))
	index := map[string]int{}
	for i, t := range tasks {
		index[t.Name] = i
	}
	done := make([]chan struct{}, len(tasks))
	for i := range done {
		done[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for i, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			for _, d := range t.DependsOn {
				j, ok := index[d]
				if !ok {
					continue // not part of this run (e.g. a single task run on its own)
				}
				select {
				case <-done[j]:
				case <-ctx.Done():
				}
				if errs[j] != nil || ctx.Err() != nil {
					why := fmt.Sprintf("upstream task %s failed", d)
					if ctx.Err() != nil && errs[j] == nil {
						why = "cancelled"
					}
					results[i] = TaskResult{Task: t.Name, Status: StatusSkipped, Error: why, Outputs: []connectors.Committed{}}
					errs[i] = errSkipped
					return
				}
			}
			results[i], errs[i] = c.runTask(ctx, runID, t, log.With("task", t.Name))
		}()
	}
	wg.Wait()
	res.Tasks = results
	for i, err := range errs {
		if err == nil || err == errSkipped {
			continue
		}
		if res.Status == StatusSucceeded || (res.Status == StatusCancelled && results[i].Status == StatusFailed) {
			res.Status = results[i].Status
			res.Error = fmt.Sprintf("task %s: %v", tasks[i].Name, err)
		}
		code := 1
		if IsInvalid(err) {
			code = 2
		}
		res.ExitCode = max(res.ExitCode, code)
	}
	if res.Status == StatusSucceeded && ctx.Err() != nil && len(tasks) > 0 {
		res.Status, res.Error, res.ExitCode = StatusCancelled, "cancelled", 1
	}
	res.FinishedAt = time.Now().UTC()
	res.DurationMS = res.FinishedAt.Sub(res.StartedAt).Milliseconds()
	if res.Status == StatusSucceeded {
		log.Info("run succeeded", "duration_ms", res.DurationMS)
	} else {
		log.Error("run "+res.Status, "error", res.Error, "duration_ms", res.DurationMS)
	}
	return res
}

// errSkipped marks a task that did not run because a dependency failed.
var errSkipped = errors.New("skipped")

type taskStats struct {
	attempts, retries atomic.Int64
}

func (c *Coordinator) runTask(ctx context.Context, runID string, t *Task, log *slog.Logger) (tr TaskResult, err error) {
	start := time.Now()
	parent := ctx
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	tr = TaskResult{Task: t.Name, Status: StatusFailed, Outputs: []connectors.Committed{}}
	defer func() {
		tr.DurationMS = time.Since(start).Milliseconds()
		if err != nil {
			if parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err = connectors.Permanent(fmt.Errorf("timed out after %s (the task's timeout)", t.Timeout))
			} else if ctx.Err() != nil {
				tr.Status = StatusCancelled
			}
			tr.Error = err.Error()
		}
		c.opts.Progress.TaskDone(t.Name, tr)
	}()
	if t.Program != nil {
		if err := c.runProgram(ctx, t, &tr, log); err != nil {
			return tr, err
		}
		tr.Status = StatusSucceeded
		log.Info("program succeeded", "attempts", tr.Attempts)
		return tr, nil
	}
	run := connectors.Run{ID: runID}
	if err := t.Sink.Prepare(ctx, run); err != nil {
		return tr, err
	}
	committed := false
	defer func() {
		if !committed {
			if aerr := t.Sink.Abort(context.Background(), run); aerr != nil {
				log.Warn("abort staging", "error", aerr)
			}
		}
	}()
	for name, src := range t.Sources {
		if l, ok := src.(*LazySource); ok {
			real, err := l.Open(ctx)
			if err != nil {
				return tr, fmt.Errorf("read the result of task %s: %w", l.Task, err)
			}
			t.Sources[name] = real
		}
	}
	plan, err := c.exec.Plan(ctx, t)
	if err != nil {
		return tr, WithOrigin(t.Origin, err)
	}
	tr.Plan = plan.Kind
	tr.Partitions = len(plan.Splits)
	if w := plan.Warning(); w != "" {
		tr.Warnings = append(tr.Warnings, w)
		log.Warn(w)
	}
	log.Info("task planned", "plan", plan.Kind, "partitions", len(plan.Splits), "driving", plan.Driving)
	var totalRows int64
	for _, s := range plan.Splits {
		totalRows += s.Rows
	}
	c.opts.Progress.TaskStarted(t.Name, len(plan.Splits), totalRows)
	var st taskStats
	results := make([]AttemptResult, len(plan.Splits))
	defer func() {
		var partials []string
		for _, r := range results {
			if r.Partial != "" {
				partials = append(partials, r.Partial)
			}
		}
		if len(partials) > 0 {
			if err := c.exec.Release(context.WithoutCancel(ctx), partials); err != nil {
				log.Warn("release partial results", "error", err)
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, c.exec.Slots()))
	for i, sp := range plan.Splits {
		g.Go(func() error {
			r, err := c.attempt(gctx, Attempt{RunID: runID, Task: t, Plan: plan, Stage: 1, Split: sp}, &st, log)
			if err != nil {
				return err
			}
			results[i] = r
			c.opts.Progress.PartitionDone(t.Name, sp.Rows, r.RowsOut)
			return nil
		})
	}
	err = g.Wait()
	defer func() {
		tr.Attempts, tr.Retries = int(st.attempts.Load()), int(st.retries.Load())
	}()
	if err != nil {
		if ctx.Err() != nil {
			return tr, fmt.Errorf("cancelled: %w", ctx.Err())
		}
		return tr, err
	}
	for i, r := range results {
		tr.RowsIn += plan.Splits[i].Rows
		tr.RowsOut += r.RowsOut
	}
	if plan.Final {
		partials := make([]string, len(results))
		for i, r := range results {
			partials[i] = r.Partial
		}
		final := Attempt{RunID: runID, Task: t, Plan: plan, Stage: 2, Partials: partials}
		final.Split.ID, final.Split.Source, final.Split.Locator = "final", plan.Driving, "final stage"
		r, err := c.attempt(ctx, final, &st, log)
		if err != nil {
			return tr, err
		}
		tr.RowsOut = r.RowsOut
		results = append(results, r)
	}
	var manifests []connectors.Manifest
	for _, r := range results {
		if r.Manifest != nil {
			manifests = append(manifests, *r.Manifest)
		}
	}
	if len(t.Checks) > 0 {
		if err := c.check(ctx, t, plan, manifests, &tr, log); err != nil {
			return tr, err
		}
	}
	if err := ctx.Err(); err != nil {
		return tr, fmt.Errorf("cancelled before commit: %w", err)
	}
	out, err := t.Sink.Commit(context.WithoutCancel(ctx), run, manifests)
	if err != nil {
		return tr, fmt.Errorf("commit: %w", err)
	}
	committed = true
	tr.BytesOut = out.Bytes
	tr.Outputs = append(tr.Outputs, out)
	tr.Status = StatusSucceeded
	log.Info("task committed", "partitions", tr.Partitions, "rows_in", tr.RowsIn, "rows_out", tr.RowsOut,
		"bytes_out", tr.BytesOut, "files", len(out.Files), "already_committed", out.AlreadyCommitted)
	return tr, nil
}

// check evaluates the task's data checks on its staged output: failed
// checks of severity error block the commit (the task fails, nothing is
// published); failed warnings are logged and reported.
func (c *Coordinator) check(ctx context.Context, t *Task, plan *TaskPlan, staged []connectors.Manifest, tr *TaskResult, log *slog.Logger) error {
	results, err := CheckWith(ctx, c.exec, t, plan, staged)
	if err != nil {
		return fmt.Errorf("data checks: %w", err)
	}
	tr.Checks = results
	for _, r := range checks.Failed(results) {
		log.Warn("data check failed", "check", r.Name, "severity", r.Severity, "failures", r.Failures, "message", r.Message, "error", r.Error)
	}
	if blocking := checks.Blocking(results); len(blocking) > 0 {
		msgs := make([]string, len(blocking))
		for i, r := range blocking {
			msgs[i] = r.Message
			if msgs[i] == "" {
				msgs[i] = r.Name + ": " + r.Error
			}
		}
		return connectors.Permanent(fmt.Errorf("data checks failed, nothing committed: %s", strings.Join(msgs, "; ")))
	}
	log.Info("data checks passed", "checks", len(results))
	return nil
}

// attempt runs a partition until it succeeds, fails permanently or runs
// out of attempts.
func (c *Coordinator) attempt(ctx context.Context, a Attempt, st *taskStats, log *slog.Logger) (AttemptResult, error) {
	log = log.With("split_id", a.Split.ID)
	for n := 1; ; n++ {
		a.Number = n
		st.attempts.Add(1)
		r, err := c.safeRun(ctx, a)
		if err == nil {
			return r, nil
		}
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		err = fmt.Errorf("partition %s (%s): %w", a.Split.ID, a.Split.Locator, err)
		maxAttempts := c.opts.MaxAttempts
		if a.Task.MaxAttempts > 0 {
			maxAttempts = a.Task.MaxAttempts
		}
		if !errors.Is(err, connectors.ErrTransient) || n >= maxAttempts {
			if n > 1 {
				err = fmt.Errorf("%w (after %d attempts)", err, n)
			}
			return r, err
		}
		st.retries.Add(1)
		d := c.backoff(a.Task.RetryDelay, n)
		log.Warn("partition attempt failed; retrying", "attempt", n, "retry_in", d.String(), "error", err)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}
}

func (c *Coordinator) backoff(first time.Duration, n int) time.Duration {
	if first <= 0 {
		first = c.opts.Backoff
	}
	d := first << (n - 1)
	d = min(d, 30*time.Second)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// safeRun turns a panic in the executor into a permanent error with the
// stack, so one bad partition cannot take the process down.
func (c *Coordinator) safeRun(ctx context.Context, a Attempt) (r AttemptResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = connectors.Permanent(fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
		}
	}()
	return c.exec.Run(ctx, a)
}

// Progress receives progress events. Implementations must be safe for
// concurrent use.
type Progress interface {
	TaskStarted(task string, partitions int, rows int64)
	PartitionDone(task string, rowsIn, rowsOut int64)
	TaskDone(task string, r TaskResult)
}

type nopProgress struct{}

func (nopProgress) TaskStarted(string, int, int64)     {}
func (nopProgress) PartitionDone(string, int64, int64) {}
func (nopProgress) TaskDone(string, TaskResult)        {}

// OriginError places an error at the spec location of its task.
type OriginError struct {
	Origin string
	Err    error
}

func (e *OriginError) Error() string { return e.Origin + ": " + e.Err.Error() }

// WithOrigin places err at origin, unless origin is empty or err is
// already placed (at a more precise location).
func WithOrigin(origin string, err error) error {
	var oe *OriginError
	if origin == "" || err == nil || errors.As(err, &oe) {
		return err
	}
	return &OriginError{Origin: origin, Err: err}
}
func (e *OriginError) Unwrap() error { return e.Err }
