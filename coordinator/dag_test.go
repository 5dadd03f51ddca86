package coordinator

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
)

// dagExec runs one split per task; a task's attempt blocks until released
// through gate (when set), records the order of starts and finishes, and
// fails as scripted per task name.
type dagExec struct {
	mu      sync.Mutex
	events  []string
	running map[string]bool
	overlap bool // two tasks were running at the same time
	fail    map[string]error
	gate    map[string]chan struct{}
	tries   map[string]int
}

func (d *dagExec) Slots() int                              { return 4 }
func (d *dagExec) Release(context.Context, []string) error { return nil }
func (d *dagExec) Plan(context.Context, *Task) (*TaskPlan, error) {
	return &TaskPlan{Kind: "local", Splits: []partition.Split{{ID: "s0", Rows: 1}}}, nil
}

func (d *dagExec) Run(ctx context.Context, a Attempt) (AttemptResult, error) {
	name := a.Task.Name
	d.mu.Lock()
	d.events = append(d.events, "start "+name)
	d.tries[name]++
	if len(d.running) > 0 {
		d.overlap = true
	}
	d.running[name] = true
	gate := d.gate[name]
	err := d.fail[name]
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.running, name)
		d.events = append(d.events, "end "+name)
		d.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return AttemptResult{}, ctx.Err()
		}
	}
	if err != nil {
		return AttemptResult{}, err
	}
	return AttemptResult{RowsOut: 1, Manifest: &connectors.Manifest{SplitID: "s0", Rows: 1}}, nil
}

func newDAG() *dagExec {
	return &dagExec{running: map[string]bool{}, fail: map[string]error{}, gate: map[string]chan struct{}{}, tries: map[string]int{}}
}

func dagTask(name string, deps ...string) *Task {
	return &Task{Name: name, Sink: &fakeSink{}, DependsOn: deps}
}

func index(events []string, e string) int {
	for i, x := range events {
		if x == e {
			return i
		}
	}
	return -1
}

func TestDAGOrderAndConcurrency(t *testing.T) {
	d := newDAG()
	// a and b are independent: b waits until a has started, so they can
	// only finish if they run at the same time.
	aStarted := make(chan struct{})
	d.gate["b"] = aStarted
	d.gate["a"] = make(chan struct{})
	go func() {
		for {
			d.mu.Lock()
			started := index(d.events, "start a") >= 0 && index(d.events, "start b") >= 0
			d.mu.Unlock()
			if started {
				close(aStarted)
				close(d.gate["a"])
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	c := New(d, Options{})
	res := c.Run(context.Background(), "r", "p", []*Task{dagTask("c", "a", "b"), dagTask("a"), dagTask("b"), dagTask("d", "c")})
	if res.Status != StatusSucceeded {
		t.Fatalf("status %s: %s", res.Status, res.Error)
	}
	if !d.overlap {
		t.Fatalf("independent tasks did not overlap: %v", d.events)
	}
	for _, dep := range [][2]string{{"a", "c"}, {"b", "c"}, {"c", "d"}} {
		if index(d.events, "end "+dep[0]) > index(d.events, "start "+dep[1]) {
			t.Fatalf("%s started before %s ended: %v", dep[1], dep[0], d.events)
		}
	}
	// Results keep the order the tasks were given in.
	var names []string
	for _, tr := range res.Tasks {
		names = append(names, tr.Task)
	}
	if strings.Join(names, ",") != "c,a,b,d" {
		t.Fatalf("task order %v", names)
	}
}

func TestDAGFailureSkipsDependents(t *testing.T) {
	d := newDAG()
	d.fail["a"] = connectors.Permanent(errors.New("bad data"))
	c := New(d, Options{})
	res := c.Run(context.Background(), "r", "p", []*Task{dagTask("a"), dagTask("b"), dagTask("c", "a"), dagTask("d", "c")})
	if res.Status != StatusFailed || res.ExitCode != 1 || !strings.Contains(res.Error, "task a:") {
		t.Fatalf("result %+v", res)
	}
	want := map[string]string{"a": StatusFailed, "b": StatusSucceeded, "c": StatusSkipped, "d": StatusSkipped}
	for _, tr := range res.Tasks {
		if tr.Status != want[tr.Task] {
			t.Errorf("task %s: %s, want %s (%s)", tr.Task, tr.Status, want[tr.Task], tr.Error)
		}
	}
	if d.tries["c"] != 0 || d.tries["d"] != 0 {
		t.Fatalf("skipped tasks ran: %v", d.tries)
	}
}

func TestTaskRetriesAndTimeout(t *testing.T) {
	d := newDAG()
	d.fail["flaky"] = connectors.Transient(errors.New("connection reset"))
	d.gate["slow"] = make(chan struct{}) // never released
	c := New(d, Options{MaxAttempts: 2, Backoff: time.Millisecond})
	flaky := dagTask("flaky")
	flaky.MaxAttempts, flaky.RetryDelay = 5, time.Millisecond
	slow := dagTask("slow")
	slow.Timeout = 50 * time.Millisecond
	res := c.Run(context.Background(), "r", "p", []*Task{flaky, slow})
	if d.tries["flaky"] != 5 {
		t.Fatalf("flaky tried %d times, want the task's 5", d.tries["flaky"])
	}
	var slowRes TaskResult
	for _, tr := range res.Tasks {
		if tr.Task == "slow" {
			slowRes = tr
		}
	}
	if slowRes.Status != StatusFailed || !strings.Contains(slowRes.Error, "timed out after 50ms") {
		t.Fatalf("slow task: %+v", slowRes)
	}
}
