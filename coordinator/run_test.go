package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
	"pgregory.net/rapid"
)

// fakeExec fails attempts as scripted: fail[splitID] lists the errors of
// its first attempts, in order.
type fakeExec struct {
	mu       sync.Mutex
	splits   int
	final    bool
	fail     map[string][]error
	tries    map[string]int
	panics   map[string]bool
	released []string
}

func (f *fakeExec) Slots() int { return 3 }

func (f *fakeExec) Release(_ context.Context, partials []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, partials...)
	return nil
}

func (f *fakeExec) Plan(context.Context, *Task) (*TaskPlan, error) {
	p := &TaskPlan{Kind: "local", Final: f.final}
	for i := range f.splits {
		p.Splits = append(p.Splits, partition.Split{ID: fmt.Sprintf("s%d", i), Rows: 10})
	}
	return p, nil
}

func (f *fakeExec) Run(ctx context.Context, a Attempt) (AttemptResult, error) {
	f.mu.Lock()
	n := f.tries[a.Split.ID]
	f.tries[a.Split.ID]++
	var err error
	if n < len(f.fail[a.Split.ID]) {
		err = f.fail[a.Split.ID][n]
	}
	panics := f.panics[a.Split.ID]
	f.mu.Unlock()
	if panics {
		panic("boom")
	}
	if err != nil {
		return AttemptResult{}, err
	}
	if a.Stage == 1 && a.Plan.Final {
		return AttemptResult{Partial: a.Split.ID, RowsOut: 1}, nil
	}
	return AttemptResult{RowsOut: 10, Manifest: &connectors.Manifest{SplitID: a.Split.ID, Attempt: a.Number, Rows: 10}}, nil
}

type fakeSink struct {
	mu        sync.Mutex
	committed []connectors.Manifest
	aborted   bool
}

func (s *fakeSink) Prepare(context.Context, connectors.Run) error { return nil }
func (s *fakeSink) Abort(context.Context, connectors.Run) error {
	s.aborted = true
	return nil
}
func (s *fakeSink) Describe() string { return "fake" }
func (s *fakeSink) Commit(_ context.Context, _ connectors.Run, m []connectors.Manifest) (connectors.Committed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed = append(s.committed, m...)
	var c connectors.Committed
	for _, x := range m {
		c.Rows += x.Rows
	}
	return c, nil
}

func newFake(splits int) *fakeExec {
	return &fakeExec{splits: splits, fail: map[string][]error{}, tries: map[string]int{}, panics: map[string]bool{}}
}

func runFake(t *testing.T, f *fakeExec) (*RunResult, *fakeSink) {
	t.Helper()
	sink := &fakeSink{}
	c := New(f, Options{Backoff: time.Millisecond})
	res := c.Run(context.Background(), "r", "", []*Task{{Name: "t", Sink: sink}})
	return res, sink
}

func TestRetriesTransient(t *testing.T) {
	f := newFake(5)
	f.fail["s2"] = []error{connectors.Transient(errors.New("flaky")), connectors.Transient(errors.New("flaky"))}
	res, sink := runFake(t, f)
	if res.Status != StatusSucceeded || res.Tasks[0].Retries != 2 || res.Tasks[0].Attempts != 7 {
		t.Fatalf("%+v", res)
	}
	if len(sink.committed) != 5 || sink.aborted {
		t.Fatalf("committed %d manifests, aborted %v", len(sink.committed), sink.aborted)
	}
	for _, m := range sink.committed {
		if m.SplitID == "s2" && m.Attempt != 3 {
			t.Fatalf("s2 committed attempt %d, want 3", m.Attempt)
		}
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	f := newFake(3)
	f.fail["s1"] = []error{connectors.Transient(errors.New("a")), connectors.Transient(errors.New("b")), connectors.Transient(errors.New("c"))}
	res, sink := runFake(t, f)
	if res.Status != StatusFailed || res.ExitCode != 1 || !strings.Contains(res.Error, "after 3 attempts") {
		t.Fatalf("%+v", res)
	}
	if len(sink.committed) != 0 || !sink.aborted {
		t.Fatal("a failed run committed or did not abort")
	}
}

func TestPermanentFailsFast(t *testing.T) {
	f := newFake(4)
	f.fail["s0"] = []error{connectors.Permanent(errors.New("bad data"))}
	res, sink := runFake(t, f)
	if res.Status != StatusFailed || f.tries["s0"] != 1 || !strings.Contains(res.Error, "s0") || len(sink.committed) != 0 {
		t.Fatalf("%+v tries %v", res, f.tries)
	}
}

func TestPanicBecomesError(t *testing.T) {
	f := newFake(2)
	f.panics["s1"] = true
	res, sink := runFake(t, f)
	if res.Status != StatusFailed || !strings.Contains(res.Error, "panic: boom") || len(sink.committed) != 0 {
		t.Fatalf("%+v", res)
	}
}

func TestFinalStage(t *testing.T) {
	f := newFake(4)
	f.final = true
	res, sink := runFake(t, f)
	if res.Status != StatusSucceeded || len(sink.committed) != 1 || sink.committed[0].SplitID != "final" {
		t.Fatalf("%+v %+v", res, sink.committed)
	}
	if len(f.released) != 4 {
		t.Fatalf("released %v, want the 4 partials", f.released)
	}
}

func TestCancelled(t *testing.T) {
	f := newFake(2)
	sink := &fakeSink{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := New(f, Options{}).Run(ctx, "r", "", []*Task{{Name: "t", Sink: sink}})
	if res.Status != StatusCancelled || len(sink.committed) != 0 || !sink.aborted {
		t.Fatalf("%+v", res)
	}
}

// TestExactlyOnceProperty: whatever transient failures happen, a run that
// succeeds commits exactly one manifest per partition, and a run that fails
// commits nothing.
func TestExactlyOnceProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 30).Draw(rt, "splits")
		f := newFake(n)
		for i := range n {
			k := rapid.IntRange(0, 3).Draw(rt, "failures")
			for range k {
				f.fail[fmt.Sprintf("s%d", i)] = append(f.fail[fmt.Sprintf("s%d", i)], connectors.Transient(errors.New("x")))
			}
		}
		sink := &fakeSink{}
		res := New(f, Options{Backoff: time.Microsecond}).Run(context.Background(), "r", "", []*Task{{Name: "t", Sink: sink}})
		seen := map[string]int{}
		for _, m := range sink.committed {
			seen[m.SplitID]++
		}
		switch res.Status {
		case StatusSucceeded:
			if len(seen) != n {
				rt.Fatalf("%d of %d partitions committed", len(seen), n)
			}
			for id, c := range seen {
				if c != 1 {
					rt.Fatalf("%s committed %d times", id, c)
				}
			}
		default:
			if len(sink.committed) != 0 {
				rt.Fatalf("failed run committed %d manifests", len(sink.committed))
			}
		}
	})
}
