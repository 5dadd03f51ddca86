package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/runstore"
	"github.com/liminal-data/liminal/scheduler"
	"github.com/liminal-data/liminal/spec"
)

// defaultStateDir is where the run history lives: $LIMINAL_STATE, else
// $XDG_STATE_HOME/liminal, else ~/.local/state/liminal.
func defaultStateDir() string {
	if d := os.Getenv("LIMINAL_STATE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "liminal")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "liminal")
	}
	return filepath.Join(os.TempDir(), "liminal-state")
}

func newSchedulerCmd(g *globals) *cobra.Command {
	var f runFlags
	var state string
	var once bool
	var maxCatchup int
	cmd := &cobra.Command{
		Use:   "scheduler SPEC...",
		Short: "Run the pipelines of specs on their cron schedules",
		Long: `Schedule every pipeline of the SPECs that has a schedule (cron, five fields or a
macro such as @daily, read in the pipeline's timezone, default UTC) and run it on
time, through the same path as 'liminal run'. Each run is recorded in the run
history under --state ('liminal runs' shows it).

A scheduled run's id is <pipeline>-<slot in UTC>, e.g. nightly-20260329T010000Z;
the run is skipped when every sink already committed that id, so a scheduler
restarted in the middle of a slot re-runs it without duplicating output.
Missed slots (the scheduler was down) run oldest first with 'catchup: true'
(at most --max-catchup), and are recorded skipped otherwise; the newest due slot
always runs. A slot that finds the pipeline's previous run still running
('max_active_runs', default 1) is recorded skipped.

SIGINT or SIGTERM cancels the running runs, records them cancelled and exits 0.
With --once the scheduler runs what is due now and exits (1 when a run failed):
for cron, a Kubernetes CronJob or a test.`,
		Example: "  liminal scheduler etl.yml reports.yml\n  liminal scheduler etl.yml --state /var/lib/liminal --once",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			log, err := g.logger(false)
			if err != nil {
				return err
			}
			var jobs []scheduler.Job
			var errs []error
			for _, path := range args {
				s, err := spec.Load(path)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for i, p := range s.Pipelines {
					if p.Schedule == "" {
						continue
					}
					sc, err := scheduler.Parse(p.Schedule, p.Timezone)
					if err != nil {
						errs = append(errs, s.Errorf(fmt.Sprintf("pipelines[%d].schedule", i), "%v", err))
						continue
					}
					jobs = append(jobs, scheduler.Job{Pipeline: p.Pipeline, Spec: path, Schedule: sc, Catchup: p.Catchup, MaxActiveRuns: p.MaxActiveRuns})
				}
			}
			if len(errs) > 0 {
				return exit(exitInvalid, errors.Join(errs...))
			}
			if len(jobs) == 0 {
				return exit(exitInvalid, fmt.Errorf("no pipeline of %v has a schedule", args))
			}
			store, err := runstore.Open(state)
			if err != nil {
				return exit(exitFailed, err)
			}
			defer store.Close()
			var failed atomic.Int64
			runFn := func(ctx context.Context, job scheduler.Job, runID string, _ runstore.Trigger, _ time.Time) *coordinator.RunResult {
				res := scheduledRun(ctx, f, job, runID, log)
				if res.Status != coordinator.StatusSucceeded && res.Status != statusSkipped {
					failed.Add(1)
				}
				return res
			}
			sch, err := scheduler.New(jobs, runFn, store, scheduler.Options{Logger: log, Once: once, MaxCatchup: maxCatchup})
			if err != nil {
				return exit(exitInvalid, err)
			}
			f.protect = []string{state} // no overwrite may remove the run history
			log.Info("scheduler started", "pipelines", len(jobs), "state", state, "once", once)
			if err := sch.Run(cmd.Context()); err != nil {
				return exit(exitFailed, err)
			}
			if n := failed.Load(); once && n > 0 {
				return exit(exitFailed, fmt.Errorf("%d scheduled runs failed (liminal runs --state %s)", n, state))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", defaultStateDir(), "state directory holding the run history (runs.db); also $LIMINAL_STATE")
	cmd.Flags().BoolVar(&once, "once", false, "run what is due now (missed and latest slots, interrupted runs), then exit")
	cmd.Flags().IntVar(&maxCatchup, "max-catchup", 100, "at most this many missed slots run per pipeline at start (catchup: true)")
	cmd.Flags().IntVar(&f.workers, "workers", defaultWorkers(), "partitions that run at once in each run (worker slots)")
	cmd.Flags().IntVar(&f.maxAttempts, "max-attempts", 3, "attempts per partition for transient errors")
	cmd.Flags().StringVar(&f.workDir, "work-dir", "", "where DuckDB spills when memory runs short (default: the OS temp directory)")
	cmd.Flags().StringVar(&f.memoryLimit, "memory-limit", "", "DuckDB memory limit of each run, e.g. 4GB (default: 80% of RAM)")
	return cmd
}

// scheduledRun runs one slot of a job like `liminal run SPEC --pipeline P
// --run-id ID --skip-if-committed`, reloading the spec so that edits to it
// and its SQL files apply from the next run on.
func scheduledRun(ctx context.Context, f runFlags, job scheduler.Job, runID string, log *slog.Logger) *coordinator.RunResult {
	f.runID = runID
	f.skipIfCommitted = true
	s, p, pi, err := loadPipeline(job.Spec, job.Pipeline)
	var res *coordinator.RunResult
	if err == nil {
		res, err = runTasks(ctx, f, job.Pipeline, func(ctx context.Context) ([]*coordinator.Task, error) {
			return coordinator.Resolve(ctx, s, p, pi, coordinator.Overrides{TargetRows: f.targetRows, MaxPartitions: f.maxPartitions,
				RunID: runID, WorkDir: f.workDir, Protect: f.protect})
		}, coordinator.Options{Logger: log})
	}
	if err != nil {
		code := exitFailed
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else if coordinator.IsInvalid(err) {
			code = exitInvalid
		}
		now := time.Now().UTC()
		res = &coordinator.RunResult{RunID: runID, Pipeline: job.Pipeline, Status: coordinator.StatusFailed, ExitCode: code,
			Error: err.Error(), StartedAt: now, FinishedAt: now, Tasks: []coordinator.TaskResult{}}
	}
	res.Spec = job.Spec
	if p != nil {
		sendAlerts(p, res, log)
	}
	if res.Status == statusSkipped {
		log.Info("run skipped: already committed by every sink", "pipeline", job.Pipeline, "run_id", runID)
	}
	return res
}
