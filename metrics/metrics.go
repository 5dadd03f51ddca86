package metrics

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"

	"github.com/liminal-data/liminal/checks"
	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/coordinator"
)

// DurationBuckets are the buckets of the run and partition duration
// histograms, in seconds: 0.1 s to 6 h.
var DurationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600}

// Names are the names of the metrics a Metrics registers (histograms by
// their family name, without _bucket, _sum and _count).
var Names = []string{
	"liminal_runs_total",
	"liminal_run_duration_seconds",
	"liminal_active_runs",
	"liminal_queued_runs",
	"liminal_partitions_total",
	"liminal_partition_duration_seconds",
	"liminal_partition_retries_total",
	"liminal_queued_partitions",
	"liminal_rows_in_total",
	"liminal_rows_out_total",
	"liminal_bytes_written_total",
	"liminal_worker_slots",
	"liminal_worker_slots_busy",
	"liminal_checks_total",
	"liminal_cluster_workers",
	"liminal_checks_failed_total",
}

// Metrics holds Liminal's collectors on its own registry. It is safe for
// concurrent use.
//
// *Metrics implements coordinator.Progress for a process that runs one run
// at a time (the CLI): its events count toward the pipeline of the latest
// RunStarted. A process that runs several runs at once takes a *Run per run
// from StartRun instead.
type Metrics struct {
	reg     *prometheus.Registry
	runtime *prometheus.Registry

	runs              *prometheus.CounterVec
	runDuration       *prometheus.HistogramVec
	activeRuns        *prometheus.GaugeVec
	queuedRuns        prometheus.Gauge
	clusterWorkers    prometheus.Gauge
	partitions        *prometheus.CounterVec
	partitionDuration *prometheus.HistogramVec
	retries           *prometheus.CounterVec
	queuedPartitions  *prometheus.GaugeVec
	rowsIn            *prometheus.CounterVec
	rowsOut           *prometheus.CounterVec
	bytesOut          *prometheus.CounterVec
	slots             prometheus.Gauge
	slotsBusy         prometheus.Gauge
	checks            *prometheus.CounterVec
	checksFailed      *prometheus.CounterVec

	cur atomic.Pointer[Run] // the run of RunStarted, for the Progress methods of *Metrics
}

var _ coordinator.Progress = (*Metrics)(nil)

// New returns a Metrics with every collector registered on a new registry.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), runtime: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liminal_runs_total",
		Help: "Runs finished, by pipeline and final status (succeeded, failed, cancelled)."}, []string{"pipeline", "status"})
	m.runDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "liminal_run_duration_seconds",
		Help: "Wall-clock duration of finished runs.", Buckets: DurationBuckets}, []string{"pipeline", "status"})
	m.activeRuns = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "liminal_active_runs",
		Help: "Runs running now."}, []string{"pipeline"})
	m.queuedRuns = prometheus.NewGauge(prometheus.GaugeOpts{Name: "liminal_queued_runs",
		Help: "Submitted runs waiting for a free run slot of the coordinator."})
	m.partitions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liminal_partitions_total",
		Help: "Partitions finished, by status: succeeded, or failed/cancelled for the partitions a failed or cancelled task did not complete."},
		[]string{"pipeline", "task", "status"})
	m.partitionDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "liminal_partition_duration_seconds",
		Help: "Duration of partition attempts (each retry is one sample).", Buckets: DurationBuckets}, []string{"pipeline", "task"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liminal_partition_retries_total",
		Help: "Partition attempts retried after a transient error."}, []string{"pipeline", "task"})
	m.queuedPartitions = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "liminal_queued_partitions",
		Help: "Planned partitions of running tasks not started yet."}, []string{"pipeline"})
	m.rowsIn = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liminal_rows_in_total",
		Help: "Input rows of finished partitions (an estimate for CSV)."}, []string{"pipeline", "task"})
	m.rowsOut = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liminal_rows_out_total",
		Help: "Rows committed to sinks by succeeded tasks."}, []string{"pipeline", "task"})
	m.bytesOut = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liminal_bytes_written_total",
		Help: "Bytes committed to sinks by succeeded tasks."}, []string{"pipeline", "task"})
	m.slots = prometheus.NewGauge(prometheus.GaugeOpts{Name: "liminal_worker_slots",
		Help: "Worker slots of the runs running now (partitions that can run at once)."})
	m.slotsBusy = prometheus.NewGauge(prometheus.GaugeOpts{Name: "liminal_worker_slots_busy",
		Help: "Worker slots running a partition attempt now."})
	m.clusterWorkers = prometheus.NewGauge(prometheus.GaugeOpts{Name: "liminal_cluster_workers",
		Help: "Worker processes registered with this coordinator (liminal coordinator --listen)."})
	m.checks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liminal_checks_total",
		Help: "Data checks run, by severity (error, warn)."}, []string{"pipeline", "task", "severity"})
	m.checksFailed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liminal_checks_failed_total",
		Help: "Data checks failed, by severity (error, warn)."}, []string{"pipeline", "task", "severity"})
	for _, c := range []prometheus.Collector{m.runs, m.runDuration, m.activeRuns, m.queuedRuns, m.partitions,
		m.partitionDuration, m.retries, m.queuedPartitions, m.rowsIn, m.rowsOut, m.bytesOut, m.slots, m.slotsBusy,
		m.checks, m.checksFailed, m.clusterWorkers} {
		f(c)
	}
	m.runtime.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry of Liminal's own metrics (no Go runtime or
// process metrics).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats, with the
// Go runtime and process metrics added.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{m.reg, m.runtime}, promhttp.HandlerOpts{})
}

// Push replaces the metrics of job on the Pushgateway at url with the
// current values (Liminal's own metrics, without the Go runtime ones): the
// last step of a one-shot CLI run.
func (m *Metrics) Push(ctx context.Context, url, job string) error {
	p := push.New(url, job).Gatherer(m.reg).Format(expfmt.NewFormat(expfmt.TypeTextPlain))
	if err := p.PushContext(ctx); err != nil {
		return fmt.Errorf("push metrics to %s: %w", url, err)
	}
	return nil
}

// RunStarted counts a run of pipeline as active; the Progress events of
// *Metrics count toward it until RunFinished.
func (m *Metrics) RunStarted(pipeline string) {
	m.cur.Store(m.StartRun(pipeline))
}

// RunFinished counts the run's outcome and duration and ends its active
// state. It takes the pipeline's latest RunStarted when it is still the
// current run, so a run is never counted twice.
func (m *Metrics) RunFinished(pipeline string, res *coordinator.RunResult) {
	if r := m.cur.Load(); r != nil && r.pipeline == pipeline && m.cur.CompareAndSwap(r, nil) {
		r.Finish(res)
		return
	}
	m.finish(pipeline, res)
}

// SetClusterWorkers records the worker processes registered with a
// cluster coordinator.
func (m *Metrics) SetClusterWorkers(n int) { m.clusterWorkers.Set(float64(n)) }

// SetQueuedRuns sets the number of runs waiting for a run slot.
func (m *Metrics) SetQueuedRuns(n int) { m.queuedRuns.Set(float64(n)) }

// Checks counts data checks of a task: run checks ran, failed of them
// failed, all of one severity ("error" or "warn"; "" means "error").
func (m *Metrics) Checks(pipeline, task, severity string, run, failed int) {
	if severity == "" {
		severity = "error"
	}
	m.checks.WithLabelValues(pipeline, task, severity).Add(float64(run))
	m.checksFailed.WithLabelValues(pipeline, task, severity).Add(float64(failed))
}

func (m *Metrics) finish(pipeline string, res *coordinator.RunResult) {
	status := coordinator.StatusFailed
	var d time.Duration
	if res != nil {
		status = res.Status
		d = res.FinishedAt.Sub(res.StartedAt)
		for _, t := range res.Tasks {
			run, failed := map[string]int{}, map[string]int{}
			for _, c := range t.Checks {
				run[c.Severity]++
				if !c.Passed {
					failed[c.Severity]++
				}
			}
			for sev, n := range run {
				m.Checks(pipeline, t.Task, sev, n, failed[sev])
			}
		}
	}
	m.runs.WithLabelValues(pipeline, status).Inc()
	m.runDuration.WithLabelValues(pipeline, status).Observe(max(d, 0).Seconds())
}

// current is the run of RunStarted, or an anonymous one for events that
// come without it.
func (m *Metrics) current() *Run {
	if r := m.cur.Load(); r != nil {
		return r
	}
	r := newRun(m, "")
	if m.cur.CompareAndSwap(nil, r) {
		return r
	}
	return m.cur.Load()
}

// TaskStarted implements coordinator.Progress for the current run.
func (m *Metrics) TaskStarted(task string, partitions int, rows int64) {
	m.current().TaskStarted(task, partitions, rows)
}

// PartitionDone implements coordinator.Progress for the current run.
func (m *Metrics) PartitionDone(task string, rowsIn, rowsOut int64) {
	m.current().PartitionDone(task, rowsIn, rowsOut)
}

// TaskDone implements coordinator.Progress for the current run.
func (m *Metrics) TaskDone(task string, tr coordinator.TaskResult) {
	m.current().TaskDone(task, tr)
}

// Executor wraps e to time partition attempts and count busy worker slots
// of the current run (see RunStarted). Its slots count toward
// liminal_worker_slots for the life of the process.
func (m *Metrics) Executor(e coordinator.Executor) coordinator.Executor {
	m.slots.Add(float64(slotsOf(e)))
	return &executor{Executor: e, run: m.current}
}

// slotsOf is how many worker slots e counts for liminal_worker_slots: an
// executor whose Slots is a concurrency limit rather than slots of its own
// (a cluster's, whose workers are liminal_cluster_workers) says so with
// MetricSlots.
func slotsOf(e coordinator.Executor) int {
	if m, ok := e.(interface{ MetricSlots() int }); ok {
		return m.MetricSlots()
	}
	return e.Slots()
}

// StartRun counts a run of pipeline as active and returns its Run, which
// receives that run's events; call Finish when it is over.
func (m *Metrics) StartRun(pipeline string) *Run {
	m.activeRuns.WithLabelValues(pipeline).Inc()
	r := newRun(m, pipeline)
	r.active = true
	return r
}

// Run is the metrics of one run: a coordinator.Progress, and (Executor) a
// wrapper of the run's executor. It is safe for concurrent use.
type Run struct {
	m        *Metrics
	pipeline string

	mu       sync.Mutex
	tasks    map[string]*taskState
	active   bool // counted in liminal_active_runs
	slots    int  // added to liminal_worker_slots by Executor
	wrapped  bool // attempts are seen by an Executor wrapper
	finished bool
}

type taskState struct {
	planned, done int
	started       map[string]bool // stage-1 splits that had a first attempt
	queued        int             // counted in liminal_queued_partitions
}

var _ coordinator.Progress = (*Run)(nil)

func newRun(m *Metrics, pipeline string) *Run {
	return &Run{m: m, pipeline: pipeline, tasks: map[string]*taskState{}}
}

func (r *Run) task(name string) *taskState {
	t := r.tasks[name]
	if t == nil {
		t = &taskState{started: map[string]bool{}}
		r.tasks[name] = t
	}
	return t
}

func (r *Run) unqueue(t *taskState, n int) {
	n = min(n, t.queued)
	if n > 0 {
		t.queued -= n
		r.m.queuedPartitions.WithLabelValues(r.pipeline).Sub(float64(n))
	}
}

// TaskStarted implements coordinator.Progress: the task's partitions are
// queued.
func (r *Run) TaskStarted(task string, partitions int, _ int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.task(task)
	t.planned += partitions
	t.queued += partitions
	r.m.queuedPartitions.WithLabelValues(r.pipeline).Add(float64(partitions))
	// Initialise the task's series, so that they exist (at 0) from the start.
	r.m.rowsIn.WithLabelValues(r.pipeline, task)
	r.m.retries.WithLabelValues(r.pipeline, task)
}

// PartitionDone implements coordinator.Progress.
func (r *Run) PartitionDone(task string, rowsIn, _ int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.task(task)
	t.done++
	if !r.wrapped {
		r.unqueue(t, 1)
	}
	r.m.partitions.WithLabelValues(r.pipeline, task, coordinator.StatusSucceeded).Inc()
	r.m.rowsIn.WithLabelValues(r.pipeline, task).Add(float64(rowsIn))
}

// TaskDone implements coordinator.Progress: output rows and bytes of a
// committed task, retries, and the partitions a failed task left undone.
func (r *Run) TaskDone(task string, tr coordinator.TaskResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.task(task)
	r.unqueue(t, t.queued)
	if tr.Status != coordinator.StatusSucceeded {
		if left := tr.Partitions - t.done; left > 0 {
			r.m.partitions.WithLabelValues(r.pipeline, task, tr.Status).Add(float64(left))
		}
	} else {
		r.m.rowsOut.WithLabelValues(r.pipeline, task).Add(float64(tr.RowsOut))
		r.m.bytesOut.WithLabelValues(r.pipeline, task).Add(float64(tr.BytesOut))
	}
	r.m.retries.WithLabelValues(r.pipeline, task).Add(float64(tr.Retries))
}

// Executor wraps e to time this run's partition attempts, count busy
// worker slots and take started partitions off the queue. e's slots count
// toward liminal_worker_slots until Finish.
func (r *Run) Executor(e coordinator.Executor) coordinator.Executor {
	r.mu.Lock()
	r.wrapped = true
	if !r.finished {
		r.slots += slotsOf(e)
		r.m.slots.Add(float64(slotsOf(e)))
	}
	r.mu.Unlock()
	return &executor{Executor: e, run: func() *Run { return r }}
}

// Finish counts the run's outcome (res may be nil: failed) and ends its
// active state. Idempotent.
func (r *Run) Finish(res *coordinator.RunResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	r.finished = true
	for _, t := range r.tasks {
		r.unqueue(t, t.queued)
	}
	r.m.slots.Sub(float64(r.slots))
	r.slots = 0
	if r.active {
		r.m.activeRuns.WithLabelValues(r.pipeline).Dec()
	}
	r.m.finish(r.pipeline, res)
}

func (r *Run) attemptStarted(a coordinator.Attempt) {
	if a.Stage != 1 || a.Task == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.task(a.Task.Name)
	if !t.started[a.Split.ID] {
		t.started[a.Split.ID] = true
		r.unqueue(t, 1)
	}
}

// executor times attempts; run gives the Run they count toward.
type executor struct {
	coordinator.Executor
	run func() *Run
}

// Check forwards data checks to the wrapped executor.
func (e *executor) Check(ctx context.Context, t *coordinator.Task, plan *coordinator.TaskPlan, staged []connectors.Manifest) ([]checks.Result, error) {
	return coordinator.CheckWith(ctx, e.Executor, t, plan, staged)
}

func (e *executor) Run(ctx context.Context, a coordinator.Attempt) (coordinator.AttemptResult, error) {
	r := e.run()
	r.attemptStarted(a)
	task := ""
	if a.Task != nil {
		task = a.Task.Name
	}
	r.m.slotsBusy.Inc()
	start := time.Now()
	defer func() {
		r.m.slotsBusy.Dec()
		r.m.partitionDuration.WithLabelValues(r.pipeline, task).Observe(time.Since(start).Seconds())
	}()
	return e.Executor.Run(ctx, a)
}

// MultiProgress sends every progress event to each of its receivers in
// order.
type MultiProgress []coordinator.Progress

var _ coordinator.Progress = MultiProgress(nil)

// TaskStarted implements coordinator.Progress.
func (mp MultiProgress) TaskStarted(task string, partitions int, rows int64) {
	for _, p := range mp {
		p.TaskStarted(task, partitions, rows)
	}
}

// PartitionDone implements coordinator.Progress.
func (mp MultiProgress) PartitionDone(task string, rowsIn, rowsOut int64) {
	for _, p := range mp {
		p.PartitionDone(task, rowsIn, rowsOut)
	}
}

// TaskDone implements coordinator.Progress.
func (mp MultiProgress) TaskDone(task string, tr coordinator.TaskResult) {
	for _, p := range mp {
		p.TaskDone(task, tr)
	}
}
