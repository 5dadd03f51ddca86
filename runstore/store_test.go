package runstore

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)

func rec(p string, i int, st Status) Record {
	return Record{RunID: fmt.Sprintf("%s-%03d", p, i), Pipeline: p, Status: st, Trigger: TriggerSchedule,
		ScheduledAt: t0.Add(time.Duration(i) * time.Minute), StartedAt: t0.Add(time.Duration(i)*time.Minute + time.Second)}
}

func TestOrderingAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{3, 1, 4, 0, 2} {
		for _, p := range []string{"a", "b"} {
			if err := s.Put(rec(p, i, StatusSucceeded)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Replacing a record keeps one record per key.
	r := rec("a", 4, StatusFailed)
	r.Error = "boom"
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := map[string]struct {
		pipeline string
		limit    int
		want     []string
	}{
		"one pipeline":  {"a", 0, []string{"a-004", "a-003", "a-002", "a-001", "a-000"}},
		"limit":         {"b", 2, []string{"b-004", "b-003"}},
		"all pipelines": {"", 3, []string{"a-004", "b-004", "a-003"}},
		"unknown":       {"zz", 0, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rs, err := s.List(tc.pipeline, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.RunID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	last, ok, err := s.Last("a")
	if err != nil || !ok || last.Status != StatusFailed || last.Error != "boom" {
		t.Fatalf("last %+v %v %v", last, ok, err)
	}
	slot, ok, err := s.LastScheduled("b")
	if err != nil || !ok || !slot.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("last scheduled %v %v %v", slot, ok, err)
	}
	if _, ok, _ := s.LastScheduled("nope"); ok {
		t.Fatal("a slot for an unknown pipeline")
	}
}

func TestActive(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 4 {
		if err := s.Put(rec("p", i, StatusRunning)); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range []int{0, 2} {
		if err := s.Put(rec("p", i, StatusSucceeded)); err != nil {
			t.Fatal(err)
		}
	}
	act, err := s.Active()
	if err != nil {
		t.Fatal(err)
	}
	if len(act) != 2 || act[0].RunID != "p-001" || act[1].RunID != "p-003" {
		t.Fatalf("active %+v", act)
	}
}

func TestConcurrentPuts(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reader, err := OpenShared(dir) // a second handle, like `liminal runs`
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if err := s.Put(rec(fmt.Sprintf("p%d", g), i, StatusSucceeded)); err != nil {
					t.Error(err)
					return
				}
				if _, err := reader.List("", 5); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rs, err := reader.List("", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 80 {
		t.Fatalf("%d records, want 80", len(rs))
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].StartedAt.After(rs[i-1].StartedAt) {
			t.Fatalf("not newest first at %d", i)
		}
	}
}

func TestOneSchedulerPerDirectory(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenWith(dir, Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || err.Error() != "another liminal scheduler uses "+dir+": "+ErrLocked.Error() {
		t.Fatalf("second open: %v", err)
	}
	s.Close()
	s2, err := Open(dir)
	if err != nil {
		t.Fatalf("after close: %v", err)
	}
	s2.Close()
	if err := s2.Put(rec("p", 0, StatusSucceeded)); err == nil {
		t.Fatal("put after close")
	}
}
