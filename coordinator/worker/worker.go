package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/engine"
	"github.com/liminal-data/liminal/partition"
)

// Worker implements coordinator.Executor on an engine.
type Worker struct {
	eng    *engine.Engine
	models models
}

var _ coordinator.Executor = (*Worker)(nil)

// New returns a worker over eng; the caller closes eng.
func New(eng *engine.Engine) *Worker { return &Worker{eng: eng} }

// Close closes the models the worker loaded. Idempotent.
func (w *Worker) Close() error { return w.models.close() }

// Slots implements coordinator.Executor.
func (w *Worker) Slots() int { return w.eng.Slots() }

// Plan implements coordinator.Executor: it binds every source whole, lets
// the engine check and plan the query, and splits the driving source.
func (w *Worker) Plan(ctx context.Context, t *coordinator.Task) (*coordinator.TaskPlan, error) {
	in := engine.PlanInput{Query: t.Query, Driving: t.Driving, Sizes: map[string]int64{},
		Gather: isGather(t.Sink), Arrow: t.Score != nil}
	for _, name := range sortedNames(t.Sources) {
		src := t.Sources[name]
		pt := engine.PlanTable{Name: name}
		switch s := src.(type) {
		case connectors.NativeSource:
			scan, err := s.ScanSQL(nil)
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", name, err)
			}
			pt.Scan = scan
		default:
			sc, err := src.Schema(ctx)
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", name, err)
			}
			pt.Schema = sc
		}
		whole, err := src.Splits(ctx, partition.Options{By: partition.None})
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", name, err)
		}
		for _, s := range whole {
			in.Sizes[name] += max(s.Bytes, s.Rows)
		}
		in.Tables = append(in.Tables, pt)
	}
	p, err := w.eng.PlanSQL(ctx, in)
	if err != nil {
		var se *engine.SQLError
		if errors.As(err, &se) {
			return nil, coordinator.Invalid(connectors.Permanent(fmt.Errorf("sql: %w", err)))
		}
		return nil, err
	}
	exec, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	cols, _ := json.Marshal(p.Columns)
	if t.Score != nil {
		sc, err := w.newScorer(t, p.Schema)
		if err != nil {
			return nil, err
		}
		w.models.mu.Lock()
		if w.models.byTask == nil {
			w.models.byTask = map[*coordinator.Task]*scorer{}
		}
		w.models.byTask[t] = sc
		w.models.mu.Unlock()
		if sc.schema != nil {
			cols, _ = json.Marshal(arrowColumns(sc.schema))
		}
	}
	tp := &coordinator.TaskPlan{Kind: string(p.Kind), Reason: p.Reason, Driving: p.Driving, Final: p.Final != "", Exec: exec, Columns: cols}
	if p.Driving == "" {
		tp.Splits = []partition.Split{{ID: "all", Locator: "no partitioned source"}}
		return tp, nil
	}
	o := t.Partition
	o.Slots = max(o.Slots, w.eng.Slots())
	if p.TopN && o.MaxPartitions == 0 && o.TargetRows == 0 && o.TargetBytes == 0 {
		// One partition per engine (process): one DuckDB instance already
		// runs a top-N on every core of its machine (see engine.Plan.TopN).
		o.MaxPartitions = max(1, o.Slots/max(1, w.eng.Slots()))
	}
	if p.Kind == engine.Single {
		o = partition.Options{By: partition.None}
	}
	tp.Splits, err = t.Sources[p.Driving].Splits(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", p.Driving, err)
	}
	if len(tp.Splits) == 1 && p.Kind != engine.Single {
		// One partition sees the whole input: the query runs as written,
		// straight into the sink, without partial and final stages.
		p.Kind, p.Reason, p.Partial, p.Final = engine.Local, "", engine.TrimStatement(t.Query), ""
		if tp.Exec, err = json.Marshal(p); err != nil {
			return nil, err
		}
		tp.Kind, tp.Reason, tp.Final = string(p.Kind), "", false
	}
	return tp, nil
}

func isGather(s connectors.Sink) bool {
	ns, ok := s.(connectors.NativeSink)
	if !ok || !ns.SingleFile() {
		return false
	}
	pj, ok := s.(connectors.PartsJoiner)
	return !ok || !pj.JoinsParts()
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Run implements coordinator.Executor.
func (w *Worker) Run(ctx context.Context, a coordinator.Attempt) (coordinator.AttemptResult, error) {
	var p engine.Plan
	if err := json.Unmarshal(a.Plan.Exec, &p); err != nil {
		return coordinator.AttemptResult{}, connectors.Permanent(fmt.Errorf("decode plan: %w", err))
	}
	var job engine.Job
	if a.Stage == 2 {
		job.Query = p.Final
		parts := make([]string, len(a.Partials))
		for i, t := range a.Partials {
			parts[i] = "SELECT * FROM " + ident(t)
		}
		job.Tables = []engine.Table{{Name: engine.PartialsTable, Scan: "(" + strings.Join(parts, " UNION ALL ") + ")"}}
	} else {
		job.Query = p.Partial
		for _, name := range sortedNames(a.Task.Sources) {
			t, err := bind(ctx, name, a.Task.Sources[name], a.Split, name == p.Driving)
			if err != nil {
				return coordinator.AttemptResult{}, err
			}
			job.Tables = append(job.Tables, t)
		}
	}
	// Rows are scored where the task's rows are final: in each partition,
	// unless a final stage still combines partial results.
	if a.Task.Score != nil && (a.Stage == 1) == (p.Kind != engine.TwoStage) {
		w.models.mu.Lock()
		sc := w.models.byTask[a.Task]
		w.models.mu.Unlock()
		if sc == nil {
			return coordinator.AttemptResult{}, connectors.Permanent(fmt.Errorf("task %s: scored before it was planned", a.Task.Name))
		}
		job.Score = sc
	}
	res := coordinator.AttemptResult{}
	if a.Stage == 1 && a.Plan.Final {
		// Partial results stay in the engine's memory (DuckDB spills them
		// if they grow): lossless for every type and no file to sync.
		res.Partial = w.eng.TableName("partial")
		job.Output.Memory = res.Partial
		r, err := w.eng.Execute(ctx, job)
		if err != nil {
			return res, classify(err)
		}
		res.RowsOut = r.Rows
		return res, nil
	}
	return w.runToSink(ctx, a, job)
}

// Release implements coordinator.Executor: it drops partial results.
func (w *Worker) Release(ctx context.Context, partials []string) error {
	return w.eng.DropTables(ctx, partials...)
}

func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// bind gives the engine one table: the split of the driving source, or
// the whole of any other (broadcast) source.
func bind(ctx context.Context, name string, src connectors.Source, sp partition.Split, driving bool) (engine.Table, error) {
	var part *partition.Split
	if driving && sp.ID != "all" {
		part = &sp
	}
	switch s := src.(type) {
	case connectors.NativeSource:
		scan, err := s.ScanSQL(part)
		if err != nil {
			return engine.Table{}, fmt.Errorf("source %s: %w", name, err)
		}
		return engine.Table{Name: name, Scan: scan}, nil
	case connectors.ArrowSource:
		if part == nil {
			whole, err := s.Splits(ctx, partition.Options{By: partition.None})
			if err != nil || len(whole) != 1 {
				return engine.Table{}, fmt.Errorf("source %s: whole-source split: %v", name, err)
			}
			part = &whole[0]
		}
		r, err := s.Read(ctx, *part, nil)
		if err != nil {
			return engine.Table{}, fmt.Errorf("source %s: %w", name, err)
		}
		return engine.Table{Name: name, Reader: r, Materialize: !driving}, nil
	}
	return engine.Table{}, connectors.Permanent(fmt.Errorf("source %s: connector can neither be scanned by DuckDB nor read as Arrow", name))
}

func (w *Worker) runToSink(ctx context.Context, a coordinator.Attempt, job engine.Job) (coordinator.AttemptResult, error) {
	res := coordinator.AttemptResult{}
	run := connectors.Run{ID: a.RunID}
	switch s := a.Task.Sink.(type) {
	case connectors.NativeSink:
		target, err := s.Stage(ctx, run, a.Split, a.Number)
		if err != nil {
			return res, err
		}
		job.Output.CopyTo = target.CopyTo()
		r, err := w.eng.Execute(ctx, job)
		if err != nil {
			_ = target.Abort(context.Background())
			return res, classify(err)
		}
		m, err := target.Close(ctx, r.Rows)
		if err != nil {
			_ = target.Abort(context.Background())
			return res, err
		}
		res.Manifest, res.RowsOut = &m, r.Rows
		return res, nil
	case connectors.ArrowSink:
		wr, err := s.Writer(ctx, run, a.Split, a.Number, nil)
		if err != nil {
			return res, err
		}
		job.Output.Writer = wr
		r, err := w.eng.Execute(ctx, job)
		if err != nil {
			_ = wr.Abort(context.Background())
			return res, classify(err)
		}
		m, err := wr.Close(ctx)
		if err != nil {
			_ = wr.Abort(context.Background())
			return res, err
		}
		res.Manifest, res.RowsOut = &m, r.Rows
		return res, nil
	}
	return res, connectors.Permanent(fmt.Errorf("sink %s can neither be written by DuckDB nor from Arrow", a.Task.Sink.Describe()))
}

// classify marks DuckDB's errors about the user's SQL or data permanent;
// cancellation and errors a connector already classified pass through.
// Anything else is not retried unless a connector marked it transient.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, connectors.ErrTransient) || errors.Is(err, connectors.ErrPermanent) {
		return err
	}
	if engine.IsUserError(err) {
		return connectors.Permanent(err)
	}
	return err
}
