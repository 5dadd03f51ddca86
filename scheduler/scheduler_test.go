package scheduler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/runstore"
)

// fakeClock moves only when the test says so.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
}

// runner is a RunFunc whose runs the test releases, and which records the
// order of the calls.
type runner struct {
	mu      sync.Mutex
	calls   []string
	block   bool
	release chan struct{}
}

func (r *runner) run(ctx context.Context, job Job, runID string, trigger runstore.Trigger, slot time.Time) *coordinator.RunResult {
	r.mu.Lock()
	r.calls = append(r.calls, fmt.Sprintf("%s/%s", runID, trigger))
	r.mu.Unlock()
	if r.block {
		select {
		case <-r.release:
		case <-ctx.Done():
			return &coordinator.RunResult{RunID: runID, Status: coordinator.StatusCancelled, ExitCode: 1, Error: ctx.Err().Error()}
		}
	}
	return &coordinator.RunResult{RunID: runID, Status: coordinator.StatusSucceeded,
		Tasks: []coordinator.TaskResult{{Task: "t", Status: coordinator.StatusSucceeded, RowsIn: 10, RowsOut: 7}}}
}

func (r *runner) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func history(t *testing.T, st *runstore.Store) map[string]runstore.Record {
	t.Helper()
	rs, err := st.List("p", 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]runstore.Record{}
	for _, r := range rs {
		if prev, ok := out[r.RunID]; !ok || r.StartedAt.After(prev.StartedAt) {
			out[r.RunID] = r
		}
	}
	return out
}

func setup(t *testing.T, expr string, catchup bool, now string) (*runstore.Store, *fakeClock, Job) {
	t.Helper()
	st, err := runstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, &fakeClock{now: utc(now)}, Job{Pipeline: "p", Spec: "spec.yml", Schedule: mustParse(t, expr, ""), Catchup: catchup}
}

func TestSkipWhileRunning(t *testing.T) {
	st, clk, job := setup(t, "* * * * *", false, "2026-01-01T10:00:30Z")
	r := &runner{block: true, release: make(chan struct{})}
	s, err := New([]Job{job}, r.run, st, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	eventually(t, "the 10:00 run", func() bool { return history(t, st)["p-20260101T100000Z"].Status == runstore.StatusRunning })
	clk.Advance(time.Minute) // 10:01:30: the 10:01 slot finds 10:00 running
	eventually(t, "the skipped 10:01 slot", func() bool { return history(t, st)["p-20260101T100100Z"].Status == runstore.StatusSkipped })
	close(r.release)
	eventually(t, "the 10:00 run to succeed", func() bool { return history(t, st)["p-20260101T100000Z"].Status == runstore.StatusSucceeded })
	clk.Advance(time.Minute) // 10:02:30: free again
	eventually(t, "the 10:02 run", func() bool { return history(t, st)["p-20260101T100200Z"].Status == runstore.StatusSucceeded })
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	rec := history(t, st)["p-20260101T100000Z"]
	if rec.RowsIn != 10 || rec.RowsOut != 7 || rec.Trigger != runstore.TriggerSchedule || !rec.ScheduledAt.Equal(utc("2026-01-01T10:00:00Z")) || len(rec.Result) == 0 {
		t.Fatalf("record %+v", rec)
	}
	if got := fmt.Sprint(r.Calls()); got != "[p-20260101T100000Z/schedule p-20260101T100200Z/schedule]" {
		t.Fatal(got)
	}
}

func TestCatchupAfterDowntime(t *testing.T) {
	tests := map[string]struct {
		catchup    bool
		maxCatchup int
		calls      string
		skipped    string
	}{
		"catchup":    {true, 100, "[p-20260101T095600Z/catchup p-20260101T095700Z/catchup p-20260101T095800Z/catchup p-20260101T095900Z/catchup p-20260101T100000Z/schedule]", ""},
		"bounded":    {true, 2, "[p-20260101T095800Z/catchup p-20260101T095900Z/catchup p-20260101T100000Z/schedule]", "p-20260101T095700Z"},
		"no catchup": {false, 100, "[p-20260101T100000Z/schedule]", "p-20260101T095900Z"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st, clk, job := setup(t, "* * * * *", tc.catchup, "2026-01-01T10:00:30Z")
			last := utc("2026-01-01T09:55:00Z")
			if err := st.Put(runstore.Record{RunID: RunID("p", last), Pipeline: "p", Status: runstore.StatusSucceeded, Trigger: runstore.TriggerSchedule,
				ScheduledAt: last, StartedAt: last, FinishedAt: last}); err != nil {
				t.Fatal(err)
			}
			r := &runner{}
			s, err := New([]Job{job}, r.run, st, Options{Clock: clk, Once: true, MaxCatchup: tc.maxCatchup})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(r.Calls()); got != tc.calls {
				t.Fatalf("calls %s\nwant  %s", got, tc.calls)
			}
			h := history(t, st)
			var skipped string
			for id, rec := range h {
				if rec.Status == runstore.StatusSkipped {
					skipped = id
				}
			}
			if skipped != tc.skipped {
				t.Fatalf("skipped record %q, want %q (%+v)", skipped, tc.skipped, h)
			}
			// Run again at once: everything is recorded, nothing is due.
			r2 := &runner{}
			s, _ = New([]Job{job}, r2.run, st, Options{Clock: clk, Once: true, MaxCatchup: tc.maxCatchup})
			if err := s.Run(context.Background()); err != nil || len(r2.Calls()) != 0 {
				t.Fatalf("second pass ran %v (%v)", r2.Calls(), err)
			}
		})
	}
}

func TestStopCancelsRunning(t *testing.T) {
	st, clk, job := setup(t, "@hourly", false, "2026-01-01T10:00:30Z")
	r := &runner{block: true, release: make(chan struct{})}
	s, _ := New([]Job{job}, r.run, st, Options{Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	eventually(t, "the run", func() bool { return history(t, st)["p-20260101T100000Z"].Status == runstore.StatusRunning })
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if rec := history(t, st)["p-20260101T100000Z"]; rec.Status != runstore.StatusCancelled || rec.FinishedAt.IsZero() {
		t.Fatalf("record %+v", rec)
	}
	if act, _ := st.Active(); len(act) != 0 {
		t.Fatalf("still active: %+v", act)
	}
}

func TestInterruptedRunReRunsSameID(t *testing.T) {
	st, clk, job := setup(t, "@hourly", false, "2026-01-01T10:20:00Z")
	slot := utc("2026-01-01T10:00:00Z")
	crashed := runstore.Record{RunID: RunID("p", slot), Pipeline: "p", Status: runstore.StatusRunning, Trigger: runstore.TriggerSchedule,
		ScheduledAt: slot, StartedAt: slot.Add(time.Second)}
	if err := st.Put(crashed); err != nil {
		t.Fatal(err)
	}
	r := &runner{}
	s, _ := New([]Job{job}, r.run, st, Options{Clock: clk, Once: true})
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(r.Calls()); got != "[p-20260101T100000Z/schedule]" {
		t.Fatal(got)
	}
	rs, _ := st.List("p", 0)
	if len(rs) != 2 || rs[0].Status != runstore.StatusSucceeded || rs[1].Status != runstore.StatusFailed || rs[0].RunID != rs[1].RunID {
		t.Fatalf("history %+v", rs)
	}
}

func TestDuplicatePipelines(t *testing.T) {
	sc := mustParse(t, "@daily", "")
	if _, err := New([]Job{{Pipeline: "p", Spec: "a.yml", Schedule: sc}, {Pipeline: "p", Spec: "b.yml", Schedule: sc}}, nil, nil, Options{}); err == nil {
		t.Fatal("no error")
	}
}
