package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/metrics"
	"github.com/liminal-data/liminal/partition"
)

// fakeExec runs every attempt at once; the split "bad" fails permanently.
type fakeExec struct{}

func (fakeExec) Plan(context.Context, *coordinator.Task) (*coordinator.TaskPlan, error) {
	return &coordinator.TaskPlan{}, nil
}
func (fakeExec) Run(_ context.Context, a coordinator.Attempt) (coordinator.AttemptResult, error) {
	if a.Split.ID == "bad" {
		return coordinator.AttemptResult{}, errors.New("boom")
	}
	return coordinator.AttemptResult{RowsIn: a.Split.Rows, RowsOut: a.Split.Rows / 2}, nil
}
func (fakeExec) Release(context.Context, []string) error { return nil }
func (fakeExec) Slots() int                              { return 4 }

// parse reads text-format metrics into families by name.
func parse(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

func gather(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// value is the value of the sample of family name whose labels include
// labels; -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Untyped != nil:
			return m.GetUntyped().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

func task(name string) *coordinator.Task { return &coordinator.Task{Name: name} }

// simulate drives r as the coordinator does: two tasks, the first with 3
// partitions succeeding, the second failing on its second partition.
func simulate(t *testing.T, r interface {
	coordinator.Progress
	Executor(coordinator.Executor) coordinator.Executor
}) {
	t.Helper()
	ex := r.Executor(fakeExec{})
	ctx := context.Background()
	r.TaskStarted("a", 3, 300)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			sp := partition.Split{ID: string(rune('x' + i)), Rows: 100}
			res, err := ex.Run(ctx, coordinator.Attempt{Task: task("a"), Stage: 1, Split: sp, Number: 1})
			if err != nil {
				t.Error(err)
				return
			}
			r.PartitionDone("a", sp.Rows, res.RowsOut)
		})
	}
	wg.Wait()
	r.TaskDone("a", coordinator.TaskResult{Task: "a", Status: coordinator.StatusSucceeded, Partitions: 3, Retries: 1,
		RowsIn: 300, RowsOut: 150, BytesOut: 4096})

	r.TaskStarted("b", 3, 300)
	if _, err := ex.Run(ctx, coordinator.Attempt{Task: task("b"), Stage: 1, Split: partition.Split{ID: "ok", Rows: 10}, Number: 1}); err != nil {
		t.Fatal(err)
	}
	r.PartitionDone("b", 10, 5)
	if _, err := ex.Run(ctx, coordinator.Attempt{Task: task("b"), Stage: 1, Split: partition.Split{ID: "bad"}, Number: 1}); err == nil {
		t.Fatal("bad split succeeded")
	}
	r.TaskDone("b", coordinator.TaskResult{Task: "b", Status: coordinator.StatusFailed, Partitions: 3})
}

func TestMetricsRun(t *testing.T) {
	m := metrics.New()
	r := m.StartRun("daily")
	simulate(t, r)
	fams := gather(t, m)
	tests := map[string]struct {
		name   string
		labels map[string]string
		want   float64
	}{
		"active during run":    {"liminal_active_runs", map[string]string{"pipeline": "daily"}, 1},
		"slots during run":     {"liminal_worker_slots", nil, 4},
		"busy after attempts":  {"liminal_worker_slots_busy", nil, 0},
		"queued after tasks":   {"liminal_queued_partitions", map[string]string{"pipeline": "daily"}, 0},
		"partitions ok a":      {"liminal_partitions_total", map[string]string{"task": "a", "status": "succeeded"}, 3},
		"partitions ok b":      {"liminal_partitions_total", map[string]string{"task": "b", "status": "succeeded"}, 1},
		"partitions failed b":  {"liminal_partitions_total", map[string]string{"task": "b", "status": "failed"}, 2},
		"rows in a":            {"liminal_rows_in_total", map[string]string{"task": "a"}, 300},
		"rows in b":            {"liminal_rows_in_total", map[string]string{"task": "b"}, 10},
		"rows out committed":   {"liminal_rows_out_total", map[string]string{"task": "a"}, 150},
		"rows out failed task": {"liminal_rows_out_total", map[string]string{"task": "b"}, -1},
		"bytes":                {"liminal_bytes_written_total", map[string]string{"task": "a"}, 4096},
		"retries":              {"liminal_partition_retries_total", map[string]string{"task": "a"}, 1},
		"attempt durations a":  {"liminal_partition_duration_seconds", map[string]string{"task": "a"}, 3},
		"attempt durations b":  {"liminal_partition_duration_seconds", map[string]string{"task": "b"}, 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := value(fams, tc.name, tc.labels); got != tc.want {
				t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
			}
		})
	}
	now := time.Now()
	r.Finish(&coordinator.RunResult{Status: coordinator.StatusFailed, StartedAt: now.Add(-90 * time.Second), FinishedAt: now})
	r.Finish(nil) // idempotent
	fams = gather(t, m)
	for name, want := range map[string]float64{"liminal_active_runs": 0, "liminal_worker_slots": 0, "liminal_queued_partitions": 0} {
		if got := value(fams, name, nil); got != want {
			t.Errorf("after Finish: %s = %v, want %v", name, got, want)
		}
	}
	if got := value(fams, "liminal_runs_total", map[string]string{"pipeline": "daily", "status": "failed"}); got != 1 {
		t.Errorf("runs_total{failed} = %v, want 1", got)
	}
	h := fams["liminal_run_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 90 {
		t.Errorf("run duration histogram: count %d sum %v, want 1 and 90", h.GetSampleCount(), h.GetSampleSum())
	}
}

// TestMetricsProgress checks the one-run-at-a-time use of *Metrics itself,
// fanned out with MultiProgress, and the queue without an Executor wrapper.
func TestMetricsProgress(t *testing.T) {
	m := metrics.New()
	m.RunStarted("nightly")
	var calls []string
	rec := recorder{&calls}
	p := metrics.MultiProgress{m, rec}
	p.TaskStarted("t", 2, 20)
	if got := value(gather(t, m), "liminal_queued_partitions", map[string]string{"pipeline": "nightly"}); got != 2 {
		t.Errorf("queued = %v, want 2", got)
	}
	p.PartitionDone("t", 10, 10)
	if got := value(gather(t, m), "liminal_queued_partitions", nil); got != 1 {
		t.Errorf("queued after one partition = %v, want 1", got)
	}
	p.PartitionDone("t", 10, 10)
	p.TaskDone("t", coordinator.TaskResult{Status: coordinator.StatusSucceeded, Partitions: 2, RowsIn: 20, RowsOut: 20})
	m.RunFinished("nightly", &coordinator.RunResult{Status: coordinator.StatusSucceeded})
	m.RunFinished("nightly", &coordinator.RunResult{Status: coordinator.StatusSucceeded}) // a second run, without RunStarted
	m.Checks("nightly", "t", "", 3, 1)
	m.Checks("nightly", "t", "warn", 2, 2)
	fams := gather(t, m)
	for name, tc := range map[string]struct {
		labels map[string]string
		want   float64
	}{
		"liminal_runs_total":          {map[string]string{"pipeline": "nightly", "status": "succeeded"}, 2},
		"liminal_active_runs":         {map[string]string{"pipeline": "nightly"}, 0},
		"liminal_rows_in_total":       {map[string]string{"pipeline": "nightly", "task": "t"}, 20},
		"liminal_checks_total":        {map[string]string{"severity": "error"}, 3},
		"liminal_checks_failed_total": {map[string]string{"severity": "warn"}, 2},
	} {
		if got := value(fams, name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", name, tc.labels, got, tc.want)
		}
	}
	if strings.Join(calls, ",") != "started t 2,done t 10,done t 10,finished t succeeded" {
		t.Errorf("MultiProgress calls: %v", calls)
	}
}

type recorder struct{ calls *[]string }

func (r recorder) TaskStarted(task string, n int, _ int64) {
	*r.calls = append(*r.calls, "started "+task+" "+itoa(int64(n)))
}
func (r recorder) PartitionDone(task string, in, _ int64) {
	*r.calls = append(*r.calls, "done "+task+" "+itoa(in))
}
func (r recorder) TaskDone(task string, tr coordinator.TaskResult) {
	*r.calls = append(*r.calls, "finished "+task+" "+tr.Status)
}

func itoa(n int64) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

// TestMetricsNames checks that Names lists exactly the registered families.
func TestMetricsNames(t *testing.T) {
	m := metrics.New()
	r := m.StartRun("p")
	simulate(t, r)
	r.Finish(&coordinator.RunResult{Status: coordinator.StatusSucceeded})
	m.Checks("p", "a", "error", 1, 0)
	m.SetQueuedRuns(0)
	fams := gather(t, m)
	for _, n := range metrics.Names {
		if fams[n] == nil {
			t.Errorf("%s is in Names but not registered", n)
		}
		delete(fams, n)
	}
	for n := range fams {
		t.Errorf("%s is registered but not in Names", n)
	}
}

func TestMetricsHandler(t *testing.T) {
	m := metrics.New()
	m.RunStarted("p")
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	fams := parse(t, resp.Body)
	if value(fams, "liminal_active_runs", map[string]string{"pipeline": "p"}) != 1 {
		t.Errorf("liminal_active_runs{pipeline=p} not 1")
	}
	if fams["go_goroutines"] == nil {
		t.Errorf("the handler serves no Go runtime metrics")
	}
}

// TestMetricsPush pushes to a fake Pushgateway and parses what it got.
func TestMetricsPush(t *testing.T) {
	var mu sync.Mutex
	var method, path string
	var body []byte
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		method, path, body = r.Method, r.URL.Path, b
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer gw.Close()
	m := metrics.New()
	r := m.StartRun("daily")
	simulate(t, r)
	now := time.Now()
	r.Finish(&coordinator.RunResult{Status: coordinator.StatusSucceeded, StartedAt: now.Add(-2 * time.Second), FinishedAt: now})
	if err := m.Push(context.Background(), gw.URL, "liminal_run"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if method != http.MethodPut || path != "/metrics/job/liminal_run" {
		t.Errorf("pushed with %s %s, want PUT /metrics/job/liminal_run", method, path)
	}
	fams := parse(t, bytes.NewReader(body))
	if got := value(fams, "liminal_runs_total", map[string]string{"pipeline": "daily", "status": "succeeded"}); got != 1 {
		t.Errorf("pushed liminal_runs_total = %v, want 1", got)
	}
	if got := value(fams, "liminal_rows_in_total", map[string]string{"task": "a"}); got != 300 {
		t.Errorf("pushed liminal_rows_in_total{task=a} = %v, want 300", got)
	}
	if got := value(fams, "liminal_run_duration_seconds", nil); got != 1 {
		t.Errorf("pushed run duration samples = %v, want 1", got)
	}
	if fams["go_goroutines"] != nil {
		t.Errorf("pushed Go runtime metrics")
	}

	gw.Close()
	if err := m.Push(context.Background(), gw.URL, "x"); err == nil {
		t.Errorf("push to a closed gateway succeeded")
	}
}
