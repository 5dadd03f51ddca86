package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/runstore"
)

// Clock is the scheduler's time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// After delivers the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the system clock.
var RealClock Clock = realClock{}

// Job is one scheduled pipeline.
type Job struct {
	// Pipeline names the pipeline; unique among a scheduler's jobs (it
	// keys the run history).
	Pipeline string
	// Spec is the spec file the pipeline comes from.
	Spec     string
	Schedule *Schedule
	Catchup  bool
	// MaxActiveRuns bounds the pipeline's runs at once (default 1).
	MaxActiveRuns int
}

// RunFunc runs one pipeline under runID and returns its result; it never
// returns nil. A cancelled ctx asks it to stop; the result is then
// cancelled. A result with status "skipped" means nothing had to be done
// (the run id was already committed).
type RunFunc func(ctx context.Context, job Job, runID string, trigger runstore.Trigger, slot time.Time) *coordinator.RunResult

// Store is the part of runstore.Store the scheduler uses.
type Store interface {
	Put(runstore.Record) error
	LastScheduled(pipeline string) (time.Time, bool, error)
	Active() ([]runstore.Record, error)
}

var _ Store = (*runstore.Store)(nil)

// Options configure a Scheduler.
type Options struct {
	Clock  Clock // default RealClock
	Logger *slog.Logger
	// MaxCatchup bounds the missed slots run at start per pipeline
	// (default 100); older ones are recorded skipped.
	MaxCatchup int
	// Once runs what is due at start (missed slots, interrupted runs,
	// the latest slot when it was not run yet), waits for it and returns,
	// instead of running on schedule until ctx ends.
	Once bool
}

// Scheduler starts the runs of its jobs on their schedules.
type Scheduler struct {
	jobs  []*jobState
	run   RunFunc
	store Store
	opts  Options
	log   *slog.Logger
	done  chan finished
}

type jobState struct {
	Job
	cursor time.Time // the newest slot handled
	next   time.Time // the next slot to fire
	active int
	queue  []queued // slots waiting for a free run, oldest first
}

type queued struct {
	Slot
	runID string
}

type finished struct {
	job *jobState
	rec runstore.Record
	res *coordinator.RunResult
}

// New returns a scheduler of jobs; nothing runs until Run.
func New(jobs []Job, run RunFunc, store Store, o Options) (*Scheduler, error) {
	if o.Clock == nil {
		o.Clock = RealClock
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxCatchup <= 0 {
		o.MaxCatchup = 100
	}
	s := &Scheduler{run: run, store: store, opts: o, log: o.Logger, done: make(chan finished)}
	seen := map[string]string{}
	for _, j := range jobs {
		if prev, ok := seen[j.Pipeline]; ok {
			return nil, fmt.Errorf("pipeline %q is in %s and %s: scheduled pipelines need distinct names", j.Pipeline, prev, j.Spec)
		}
		seen[j.Pipeline] = j.Spec
		if j.Schedule == nil {
			return nil, fmt.Errorf("pipeline %q has no schedule", j.Pipeline)
		}
		if j.MaxActiveRuns <= 0 {
			j.MaxActiveRuns = 1
		}
		s.jobs = append(s.jobs, &jobState{Job: j})
	}
	return s, nil
}

// Run schedules until ctx ends (or, with Options.Once, until what was due
// at start has run). On cancellation the running runs are cancelled,
// waited for and recorded cancelled; Run then returns nil. It returns an
// error only when the run history cannot be read or written.
func (s *Scheduler) Run(ctx context.Context) error {
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	if err := s.start(runCtx); err != nil {
		return err
	}
	var err error
	for {
		if s.opts.Once && s.idle() {
			return err
		}
		var timer <-chan time.Time
		if !s.opts.Once {
			if wake := s.wake(); !wake.IsZero() {
				timer = s.opts.Clock.After(max(wake.Sub(s.opts.Clock.Now()), 0))
			}
		}
		select {
		case <-ctx.Done():
			s.log.Info("scheduler stopping", "running", s.running())
			cancelRuns()
			for !s.idleRunning() {
				if e := s.finish(<-s.done, true); e != nil && err == nil {
					err = e
				}
			}
			return err
		case f := <-s.done:
			if e := s.finish(f, false); e != nil && err == nil {
				err = e
			}
			s.dispatch(runCtx, f.job)
		case <-timer:
			now := s.opts.Clock.Now()
			for _, j := range s.jobs {
				if !j.next.IsZero() && !now.Before(j.next) {
					if e := s.tick(runCtx, j, now); e != nil && err == nil {
						err = e
					}
				}
			}
		}
	}
}

// start re-runs interrupted runs, decides the missed slots and arms the
// schedule of every job.
func (s *Scheduler) start(ctx context.Context) error {
	now := s.opts.Clock.Now()
	byName := map[string]*jobState{}
	for _, j := range s.jobs {
		byName[j.Pipeline] = j
	}
	active, err := s.store.Active()
	if err != nil {
		return fmt.Errorf("run history: %w", err)
	}
	for _, r := range active {
		j := byName[r.Pipeline]
		if j == nil || r.ScheduledAt.IsZero() {
			continue
		}
		r.Status = runstore.StatusFailed
		r.FinishedAt = now.UTC()
		r.ExitCode = 1
		r.Error = "interrupted: the scheduler stopped during the run; re-run with the same run id"
		if err := s.store.Put(r); err != nil {
			return fmt.Errorf("run history: %w", err)
		}
		s.log.Warn("re-running an interrupted run", "pipeline", r.Pipeline, "run_id", r.RunID, "slot", r.ScheduledAt)
		j.queue = append(j.queue, queued{Slot: Slot{Time: r.ScheduledAt, Trigger: r.Trigger}, runID: r.RunID})
	}
	for _, j := range s.jobs {
		last, _, err := s.store.LastScheduled(j.Pipeline)
		if err != nil {
			return fmt.Errorf("run history: %w", err)
		}
		d := Decide(j.Schedule, last, now, j.Catchup, s.opts.MaxCatchup)
		if err := s.recordSkipped(j, d, now); err != nil {
			return err
		}
		for _, sl := range d.Run {
			j.queue = append(j.queue, queued{Slot: sl, runID: RunID(j.Pipeline, sl.Time)})
		}
		sort.SliceStable(j.queue, func(a, b int) bool { return j.queue[a].Time.Before(j.queue[b].Time) })
		j.cursor = now
		if !last.IsZero() && last.After(now) {
			j.cursor = last
		}
		j.next = j.Schedule.Next(j.cursor)
		s.log.Info("pipeline scheduled", "pipeline", j.Pipeline, "schedule", j.Schedule.String(),
			"catchup", j.Catchup, "due", len(j.queue), "next", j.next)
		s.dispatch(ctx, j)
	}
	return nil
}

// tick handles the slots of j that came due by now.
func (s *Scheduler) tick(ctx context.Context, j *jobState, now time.Time) error {
	d := Decide(j.Schedule, j.cursor, now, j.Catchup, s.opts.MaxCatchup)
	j.cursor = now
	j.next = j.Schedule.Next(now)
	if err := s.recordSkipped(j, d, now); err != nil {
		return err
	}
	busy := j.active+len(j.queue) >= j.MaxActiveRuns
	for _, sl := range d.Run {
		id := RunID(j.Pipeline, sl.Time)
		if busy {
			reason := fmt.Sprintf("previous run still running (max_active_runs %d)", j.MaxActiveRuns)
			s.log.Warn("slot skipped", "pipeline", j.Pipeline, "run_id", id, "slot", sl.Time, "reason", reason)
			if err := s.put(runstore.Record{RunID: id, Pipeline: j.Pipeline, Spec: j.Spec, Status: runstore.StatusSkipped,
				Trigger: sl.Trigger, ScheduledAt: sl.Time, StartedAt: now, FinishedAt: now, Error: reason}); err != nil {
				return err
			}
			continue
		}
		j.queue = append(j.queue, queued{Slot: sl, runID: id})
	}
	s.dispatch(ctx, j)
	return nil
}

// recordSkipped records one skipped record for the missed slots d did not
// run.
func (s *Scheduler) recordSkipped(j *jobState, d Decision, now time.Time) error {
	if d.Skipped == 0 {
		return nil
	}
	reason := fmt.Sprintf("%d missed slots from %s to %s skipped (catchup: %v, at most %d catch-up runs)",
		d.Skipped, d.FirstSkipped.Format(time.RFC3339), d.LastSkipped.Format(time.RFC3339), j.Catchup, s.opts.MaxCatchup)
	if !j.Catchup {
		reason = fmt.Sprintf("%d missed slots from %s to %s skipped (catchup: false)",
			d.Skipped, d.FirstSkipped.Format(time.RFC3339), d.LastSkipped.Format(time.RFC3339))
	}
	s.log.Warn("missed slots skipped", "pipeline", j.Pipeline, "skipped", d.Skipped, "first", d.FirstSkipped, "last", d.LastSkipped)
	return s.put(runstore.Record{RunID: RunID(j.Pipeline, d.LastSkipped), Pipeline: j.Pipeline, Spec: j.Spec,
		Status: runstore.StatusSkipped, Trigger: runstore.TriggerCatchup, ScheduledAt: d.LastSkipped, StartedAt: now, FinishedAt: now, Error: reason})
}

// dispatch starts queued slots of j while it has room.
func (s *Scheduler) dispatch(ctx context.Context, j *jobState) {
	for j.active < j.MaxActiveRuns && len(j.queue) > 0 {
		q := j.queue[0]
		j.queue = j.queue[1:]
		rec := runstore.Record{RunID: q.runID, Pipeline: j.Pipeline, Spec: j.Spec, Status: runstore.StatusRunning,
			Trigger: q.Trigger, ScheduledAt: q.Time, StartedAt: s.opts.Clock.Now().UTC()}
		if err := s.store.Put(rec); err != nil {
			// Without a record the run would be invisible; try again at
			// the next event rather than run it unrecorded.
			s.log.Error("record run start", "pipeline", j.Pipeline, "run_id", q.runID, "error", err)
			j.queue = append([]queued{q}, j.queue...)
			return
		}
		j.active++
		s.log.Info("run starting", "pipeline", j.Pipeline, "run_id", q.runID, "trigger", q.Trigger, "slot", q.Time)
		go func() {
			res := s.run(ctx, j.Job, q.runID, q.Trigger, q.Time)
			s.done <- finished{job: j, rec: rec, res: res}
		}()
	}
}

// finish records a finished run.
func (s *Scheduler) finish(f finished, stopping bool) error {
	f.job.active--
	rec, res := f.rec, f.res
	if res == nil {
		res = &coordinator.RunResult{RunID: rec.RunID, Status: coordinator.StatusFailed, ExitCode: 1, Error: "run returned no result"}
	}
	rec.FinishedAt = s.opts.Clock.Now().UTC()
	rec.ExitCode = res.ExitCode
	rec.Error = res.Error
	for _, t := range res.Tasks {
		rec.RowsIn += t.RowsIn
		rec.RowsOut += t.RowsOut
	}
	switch res.Status {
	case coordinator.StatusSucceeded:
		rec.Status = runstore.StatusSucceeded
	case coordinator.StatusCancelled:
		rec.Status = runstore.StatusCancelled
	case string(runstore.StatusSkipped):
		rec.Status = runstore.StatusSkipped
	default:
		rec.Status = runstore.StatusFailed
	}
	if stopping && rec.Status == runstore.StatusFailed {
		rec.Status = runstore.StatusCancelled // failed because it was stopped
	}
	if b, err := json.Marshal(res); err == nil {
		rec.Result = b
	}
	log := s.log.With("pipeline", rec.Pipeline, "run_id", rec.RunID, "status", rec.Status,
		"duration_ms", rec.FinishedAt.Sub(rec.StartedAt).Milliseconds(), "rows_out", rec.RowsOut)
	if rec.Status == runstore.StatusFailed {
		log.Error("run finished", "error", rec.Error)
	} else {
		log.Info("run finished")
	}
	return s.put(rec)
}

func (s *Scheduler) put(r runstore.Record) error {
	if err := s.store.Put(r); err != nil {
		s.log.Error("record run", "pipeline", r.Pipeline, "run_id", r.RunID, "error", err)
		return fmt.Errorf("run history: %w", err)
	}
	return nil
}

// wake is the earliest next slot of any job; zero when none will fire.
func (s *Scheduler) wake() time.Time {
	var w time.Time
	for _, j := range s.jobs {
		if !j.next.IsZero() && (w.IsZero() || j.next.Before(w)) {
			w = j.next
		}
	}
	return w
}

func (s *Scheduler) running() int {
	n := 0
	for _, j := range s.jobs {
		n += j.active
	}
	return n
}

func (s *Scheduler) idleRunning() bool { return s.running() == 0 }

func (s *Scheduler) idle() bool {
	for _, j := range s.jobs {
		if j.active > 0 || len(j.queue) > 0 {
			return false
		}
	}
	return true
}
