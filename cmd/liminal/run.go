package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/connectors/file"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/coordinator/worker"
	"github.com/liminal-data/liminal/engine"
	"github.com/liminal-data/liminal/metrics"
	"github.com/liminal-data/liminal/spec"
)

// runFlags are shared by run, sql and plan.
type runFlags struct {
	workers       int
	runID         string
	asJSON        bool
	targetRows    int64
	maxPartitions int
	maxAttempts   int
	workDir       string
	memoryLimit   string
	resultFile    string
	pushgateway   string
	force         bool
	protect       []string // paths no overwrite may remove (the scheduler's state)
	// pipelineSpec, when set, is the spec's pipeline: its alerts are raised
	// when the run ends.
	pipelineSpec *spec.Pipeline
	// run only
	task            string
	skipIfCommitted bool
	// cluster client (run --coordinator)
	coordinator string
	tokenFile   string
	tlsCA       string
}

// exitSkipped: nothing to do (--skip-if-committed found the run id
// committed by every task's sink); nothing ran.
const exitSkipped = 3

// statusSkipped is the RunResult status of a skipped run.
const statusSkipped = "skipped"

func (f *runFlags) register(cmd *cobra.Command, running bool) {
	cmd.Flags().IntVar(&f.workers, "workers", defaultWorkers(), "partitions that run at once (worker slots)")
	cmd.Flags().Int64Var(&f.targetRows, "target-rows", 0, "rows per partition (default: sized so every worker slot stays busy)")
	cmd.Flags().IntVar(&f.maxPartitions, "max-partitions", 0, "upper bound on partitions per task (0: none)")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the result as one JSON object, the last line of stdout")
	if running {
		cmd.Flags().StringVar(&f.runID, "run-id", "", "run id (default: time-based); re-running an id never duplicates output")
		cmd.Flags().IntVar(&f.maxAttempts, "max-attempts", 3, "attempts per partition for transient errors")
		cmd.Flags().StringVar(&f.workDir, "work-dir", "", "where DuckDB spills when memory runs short (default: the OS temp directory)")
		cmd.Flags().StringVar(&f.memoryLimit, "memory-limit", "", "DuckDB memory limit for the whole run, e.g. 4GB (default: 80% of RAM); DuckDB spills beyond it")
		cmd.Flags().StringVar(&f.pushgateway, "pushgateway", os.Getenv("LIMINAL_PUSHGATEWAY"), "push the run's metrics to this Prometheus Pushgateway URL when it ends (default $LIMINAL_PUSHGATEWAY)")
		cmd.Flags().BoolVar(&f.force, "force-overwrite", false, "let mode overwrite replace a non-empty directory that Liminal did not write (no _SUCCESS); never the working, home or root directory or a source's")
		cmd.Flags().StringVar(&f.resultFile, "result-file", "", "also write the JSON result to this file (atomically; also on failure), e.g. /airflow/xcom/return.json")
		cmd.Flags().StringVar(&f.coordinator, "coordinator", "", "submit to this cluster coordinator (host:port of its --listen) and follow the run to the end")
		cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "with --coordinator: file holding the cluster token (default: $LIMINAL_TOKEN)")
		cmd.Flags().StringVar(&f.tlsCA, "tls-ca", "", "with --coordinator: PEM certificate(s) to trust for the coordinator's TLS")
	}
}

func (f *runFlags) validate() error {
	if f.workers < 1 {
		return exit(exitInvalid, fmt.Errorf("--workers must be at least 1"))
	}
	if f.targetRows < 0 || f.maxPartitions < 0 {
		return exit(exitInvalid, fmt.Errorf("--target-rows and --max-partitions must not be negative"))
	}
	return nil
}

func (f *runFlags) engine() (*engine.Engine, error) {
	return engine.New(engine.Options{Slots: f.workers, MemoryLimit: f.memoryLimit, TempDir: f.workDir})
}

func newRunCmd(g *globals) *cobra.Command {
	var f runFlags
	var pipeline string
	cmd := &cobra.Command{
		Use:   "run SPEC",
		Short: "Run a pipeline of a spec",
		Long: `Run the tasks of one pipeline of SPEC. A task starts when the tasks it
depends on (depends_on) have succeeded; independent tasks run at the same time.
Each task's input is split into partitions that run in parallel; its output is
committed atomically when every partition has succeeded. A task whose
dependency failed is skipped. A failed or cancelled (Ctrl-C) run leaves earlier
output exactly as it was.`,
		Example: "  liminal run examples/quickstart/pipeline.yml\n  liminal run etl.yml --pipeline nightly --workers 4 --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			if f.skipIfCommitted && f.runID == "" {
				return exit(exitInvalid, fmt.Errorf("--skip-if-committed needs --run-id"))
			}
			if f.coordinator != "" {
				if f.runID == "" {
					f.runID = coordinator.NewRunID()
				}
				return g.remoteRun(cmd.Context(), f, args[0], nil, pipeline)
			}
			s, p, pi, err := loadPipeline(args[0], pipeline)
			if err != nil {
				return g.failEarly(f, p, err)
			}
			if f.runID == "" {
				f.runID = coordinator.NewRunID()
			}
			f.pipelineSpec = p
			return g.execute(cmd.Context(), f, args[0], p.Pipeline, func(ctx context.Context) ([]*coordinator.Task, error) {
				return coordinator.Resolve(ctx, s, p, pi, coordinator.Overrides{TargetRows: f.targetRows, MaxPartitions: f.maxPartitions,
					RunID: f.runID, WorkDir: f.workDir, ForceOverwrite: f.force})
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "pipeline to run (required when the spec has several)")
	cmd.Flags().StringVar(&f.task, "task", "", "run only this task of the pipeline (as an orchestrator's step)")
	cmd.Flags().BoolVar(&f.skipIfCommitted, "skip-if-committed", false, "exit 3 without running when every task's sink already committed --run-id")
	return cmd
}

func loadPipeline(path, name string) (*spec.Spec, *spec.Pipeline, int, error) {
	s, err := spec.Load(path)
	if err != nil {
		return nil, nil, 0, err
	}
	p, err := s.Pipeline(name)
	if err != nil {
		return s, nil, 0, exit(exitInvalid, err)
	}
	for i := range s.Pipelines {
		if &s.Pipelines[i] == p {
			return s, p, i, nil
		}
	}
	return s, p, 0, nil
}

// failEarly reports an error found before any run started.
func (g *globals) failEarly(f runFlags, p *spec.Pipeline, err error) error {
	code := exitFailed
	if coordinator.IsInvalid(err) {
		code = exitInvalid
	}
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	res := &coordinator.RunResult{RunID: f.runID, Status: coordinator.StatusFailed, ExitCode: code, Error: err.Error(), Tasks: []coordinator.TaskResult{}}
	if p != nil {
		res.Pipeline = p.Pipeline
	}
	if f.resultFile != "" {
		if werr := writeResultFile(f.resultFile, res); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if f.asJSON {
		_ = printJSON(g.stdout, res)
	}
	return exit(code, err)
}

// runTasks resolves the tasks and runs them (the path of `liminal run`
// and of the scheduler). An error is a problem found before the run
// started; a failed run is a result.
func runTasks(ctx context.Context, f runFlags, pipeline string, resolve func(context.Context) ([]*coordinator.Task, error), o coordinator.Options) (*coordinator.RunResult, error) {
	tasks, err := resolve(ctx)
	if err != nil {
		return nil, err
	}
	if f.task != "" {
		var names []string
		for _, t := range tasks {
			names = append(names, t.Name)
		}
		i := slices.IndexFunc(tasks, func(t *coordinator.Task) bool { return t.Name == f.task })
		if i < 0 {
			return nil, exit(exitInvalid, fmt.Errorf("--task %q: not a task that runs on its own in pipeline %s (tasks: %s)", f.task, pipeline, strings.Join(names, ", ")))
		}
		tasks = tasks[i : i+1]
	}
	if f.skipIfCommitted {
		if res := committedResult(f.runID, pipeline, tasks); res != nil {
			return res, nil
		}
	}
	eng, err := f.engine()
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	wk := worker.New(eng)
	defer wk.Close()
	o.MaxAttempts = f.maxAttempts
	return coordinator.New(wk, o).Run(ctx, f.runID, pipeline, tasks), nil
}

// committedResult is the result of a skipped run when every task's sink is
// a directory whose _SUCCESS manifest lists runID, and nil otherwise:
// single-file and database sinks keep no run ids, so they always run.
func committedResult(runID, pipeline string, tasks []*coordinator.Task) *coordinator.RunResult {
	now := time.Now().UTC()
	res := &coordinator.RunResult{RunID: runID, Pipeline: pipeline, Status: statusSkipped, ExitCode: exitSkipped, StartedAt: now, FinishedAt: now}
	for _, t := range tasks {
		fs, ok := t.Sink.(*file.Sink)
		if !ok || fs.SingleFile() {
			return nil
		}
		succ, err := file.ReadSuccess(fs.Target())
		if err != nil || !slices.Contains(succ.Runs, runID) {
			return nil
		}
		out := connectors.Committed{URI: fs.Target(), Rows: succ.Rows, Bytes: succ.Bytes, AlreadyCommitted: true}
		for _, sf := range succ.Files {
			out.Files = append(out.Files, filepath.Join(fs.Target(), sf.Path))
		}
		res.Tasks = append(res.Tasks, coordinator.TaskResult{Task: t.Name, Status: statusSkipped, RowsOut: succ.Rows, BytesOut: succ.Bytes,
			Outputs: []connectors.Committed{out}})
	}
	if len(res.Tasks) == 0 {
		return nil
	}
	return res
}

// writeResultFile writes the JSON result to path atomically: a temporary
// file in the same directory, renamed over path.
func writeResultFile(path string, res *coordinator.RunResult) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--result-file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("--result-file: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--result-file: %w", err)
	}
	return nil
}

// execute resolves the tasks, runs them and reports the result.
func (g *globals) execute(ctx context.Context, f runFlags, specPath, pipeline string, resolve func(context.Context) ([]*coordinator.Task, error)) error {
	tty := g.isTTY()
	log, err := g.logger(tty)
	if err != nil {
		return err
	}
	if f.runID == "" {
		f.runID = coordinator.NewRunID()
	}
	progress := coordinator.NewProgress(g.stderr, tty, log, 5*time.Second)
	defer progress.Stop()
	m := metrics.New()
	m.RunStarted(pipeline)
	res, err := runTasks(ctx, f, pipeline, resolve, coordinator.Options{Logger: log, Progress: metrics.MultiProgress{progress, m}})
	progress.Stop()
	if f.pushgateway != "" {
		m.RunFinished(pipeline, res)
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if perr := m.Push(pctx, f.pushgateway, "liminal"); perr != nil {
			log.Warn("push metrics", "error", perr) // never fails the run
		}
		cancel()
	}
	if err != nil {
		return g.failEarly(f, &spec.Pipeline{Pipeline: pipeline}, err)
	}
	if specPath != "" {
		res.Spec = specPath
	}
	return g.report(f, res, log)
}

// report raises the run's alerts and reports its result: the result file,
// JSON or a summary, and the exit code.
func (g *globals) report(f runFlags, res *coordinator.RunResult, log *slog.Logger) error {
	sendAlerts(f.pipelineSpec, res, log)
	if f.resultFile != "" {
		if err := writeResultFile(f.resultFile, res); err != nil {
			return exit(exitFailed, err)
		}
	}
	if f.asJSON {
		if err := printJSON(g.stdout, res); err != nil {
			return exit(exitFailed, err)
		}
	} else {
		printSummary(g.stdout, res)
	}
	if res.Status == statusSkipped {
		return exit(exitSkipped, fmt.Errorf("run %s skipped: every task's sink already committed it (--skip-if-committed)", res.RunID))
	}
	if res.Status != coordinator.StatusSucceeded {
		return exit(max(res.ExitCode, exitFailed), errors.New(res.Error))
	}
	return nil
}

func printSummary(w io.Writer, r *coordinator.RunResult) {
	if r.Status == statusSkipped {
		fmt.Fprintf(w, "run %s skipped: already committed by every task's sink\n", r.RunID)
		return
	}
	fmt.Fprintf(w, "run %s %s in %.1fs\n", r.RunID, r.Status, float64(r.DurationMS)/1000)
	for _, t := range r.Tasks {
		fmt.Fprintf(w, "  task %s: %s, %d partitions (%s), %d rows in, %d rows out, %d bytes\n",
			t.Task, t.Status, t.Partitions, t.Plan, t.RowsIn, t.RowsOut, t.BytesOut)
		for _, o := range t.Outputs {
			note := ""
			if o.AlreadyCommitted {
				note = " (already committed by this run id; nothing written)"
			}
			fmt.Fprintf(w, "    → %s: %d files%s\n", o.URI, len(o.Files), note)
		}
		for _, warn := range t.Warnings {
			fmt.Fprintf(w, "    warning: %s\n", warn)
		}
	}
}

func newPlanCmd(g *globals) *cobra.Command {
	var f runFlags
	var pipeline string
	cmd := &cobra.Command{
		Use:   "plan SPEC",
		Short: "Print the partitions each task would run, without running",
		Long: `Plan every task of a pipeline: check its SQL against the sources, decide how it
splits (partition-local, partial + final stage, or one partition and why), and
list the partitions with their source locators and estimated rows and bytes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			if f.coordinator != "" {
				if f.runID == "" {
					f.runID = coordinator.NewRunID()
				}
				return g.remoteRun(cmd.Context(), f, args[0], nil, pipeline)
			}
			s, p, pi, err := loadPipeline(args[0], pipeline)
			if err != nil {
				return exit(exitInvalid, err)
			}
			plans, err := planTasks(cmd.Context(), f, s, p, pi)
			if err != nil {
				return exit(exitCode(err), err)
			}
			if f.asJSON {
				return printJSON(g.stdout, map[string]any{"spec": args[0], "pipeline": p.Pipeline, "tasks": plans})
			}
			for _, tp := range plans {
				if tp.Plan == nil {
					fmt.Fprintf(g.stdout, "task %s: %s\n", tp.Task, tp.Note)
					if tp.Sink != "" {
						fmt.Fprintf(g.stdout, "  sink: %s\n", tp.Sink)
					}
					continue
				}
				fmt.Fprintf(g.stdout, "task %s: %s plan, %d partitions of %s\n", tp.Task, tp.Plan.Kind, len(tp.Plan.Splits), orDash(tp.Plan.Driving))
				if tp.Plan.Reason != "" {
					fmt.Fprintf(g.stdout, "  %s\n", tp.Plan.Reason)
				}
				fmt.Fprintf(g.stdout, "  sink: %s\n", tp.Sink)
				fmt.Fprintf(g.stdout, "  %-16s %12s %12s  %s\n", "PARTITION", "ROWS", "BYTES", "LOCATOR")
				for _, sp := range tp.Plan.Splits {
					fmt.Fprintf(g.stdout, "  %-16s %12d %12d  %s\n", sp.ID, sp.Rows, sp.Bytes, sp.Locator)
				}
			}
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "pipeline to plan (required when the spec has several)")
	return cmd
}

type taskPlan struct {
	Task string                `json:"task"`
	Sink string                `json:"sink,omitempty"`
	Plan *coordinator.TaskPlan `json:"plan,omitempty"`
	Note string                `json:"note,omitempty"`
}

func planTasks(ctx context.Context, f runFlags, s *spec.Spec, p *spec.Pipeline, pi int) ([]taskPlan, error) {
	tasks, err := coordinator.Resolve(ctx, s, p, pi, coordinator.Overrides{TargetRows: f.targetRows, MaxPartitions: f.maxPartitions})
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(engine.Options{Slots: f.workers})
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	w := worker.New(eng)
	defer w.Close()
	var out []taskPlan
	var errs []error
	for _, t := range tasks {
		if t.Program != nil {
			out = append(out, taskPlan{Task: t.Name, Note: t.Program.Kind + " task: runs " + strings.Join(t.Program.Argv, " ")})
			continue
		}
		if up := lazyInput(t); up != "" {
			out = append(out, taskPlan{Task: t.Name, Sink: t.Sink.Describe(), Note: "reads the result of task " + up + ": planned when it has run"})
			continue
		}
		tp, err := w.Plan(ctx, t)
		if err != nil {
			errs = append(errs, coordinator.WithOrigin(t.Origin, err))
			continue
		}
		tp.Exec = nil
		out = append(out, taskPlan{Task: t.Name, Sink: t.Sink.Describe(), Plan: tp})
	}
	return out, errors.Join(errs...)
}

// lazyInput names the earlier task whose result t reads, if any.
func lazyInput(t *coordinator.Task) string {
	for _, src := range t.Sources {
		if l, ok := src.(*coordinator.LazySource); ok {
			return l.Task
		}
	}
	return ""
}

func exitCode(err error) int {
	if coordinator.IsInvalid(err) {
		return exitInvalid
	}
	return exitFailed
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newValidateCmd(g *globals) *cobra.Command {
	var asJSON, deep bool
	cmd := &cobra.Command{
		Use:   "validate SPEC",
		Short: "Check a spec: structure, references, sources, and every task's SQL",
		Long: `Validate SPEC and report every problem with file:line and the field path.
With --deep (the default) it also opens the sources and checks each task's SQL
against them, without running anything.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := spec.Load(args[0])
			if err == nil && deep {
				for i := range s.Pipelines {
					if _, perr := planTasks(cmd.Context(), runFlags{workers: 1}, s, &s.Pipelines[i], i); perr != nil {
						err = errors.Join(err, perr)
					}
				}
			}
			if asJSON {
				res := map[string]any{"spec": args[0], "valid": err == nil}
				if err != nil {
					res["errors"] = strings.Split(err.Error(), "\n")
				}
				_ = printJSON(g.stdout, res)
			}
			if err != nil {
				return exit(exitCode(err), err)
			}
			if !asJSON {
				tasks := 0
				for _, p := range s.Pipelines {
					tasks += len(p.Tasks)
				}
				fmt.Fprintf(g.stdout, "%s: valid (%d pipelines, %d tasks, %d services)\n", filepath.Base(args[0]), len(s.Pipelines), tasks, len(s.Services))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().BoolVar(&deep, "deep", true, "also open sources and check each task's SQL")
	return cmd
}
