package lease

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestPropertySimulation: whatever the workers do (speeds, crashes, hangs,
// transient failures, zombie completions, a restore at any point, either
// policy), a run that succeeds has exactly one accepted attempt per
// partition, each from a lease valid at completion time; no partition is
// ever accepted twice; every other attempt is discarded exactly once.
func TestPropertySimulation(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := simConfig{
			Seed:       rapid.Uint64().Draw(rt, "seed"),
			Workers:    rapid.IntRange(1, 8).Draw(rt, "workers"),
			Slots:      rapid.IntRange(1, 3).Draw(rt, "slots"),
			Partitions: rapid.IntRange(1, 60).Draw(rt, "partitions"),
			Work:       time.Duration(rapid.IntRange(100, 5000).Draw(rt, "work_ms")) * time.Millisecond,
			PCrash:     rapid.Float64Range(0, 0.1).Draw(rt, "p_crash"),
			PHang:      rapid.Float64Range(0, 0.1).Draw(rt, "p_hang"),
			PTransient: rapid.Float64Range(0, 0.2).Draw(rt, "p_transient"),
			PLate:      rapid.Float64Range(0, 1).Draw(rt, "p_late"),
			PStraggle:  rapid.Float64Range(0, 0.5).Draw(rt, "p_straggle"),
			RestoreAt:  rapid.IntRange(0, 200).Draw(rt, "restore_at"),
			Policy:     LeasePolicy(rapid.IntRange(0, 1).Draw(rt, "policy")),
			MaxTime:    100 * time.Hour,
			Check:      true,
			Opts: Options{
				LeaseTTL:                time.Duration(rapid.IntRange(1, 20).Draw(rt, "ttl_s")) * time.Second,
				MaxAttemptsPerPartition: rapid.IntRange(1, 10).Draw(rt, "max_attempts"),
				MaxFailuresPerWorker:    rapid.IntRange(1, 4).Draw(rt, "max_failures_per_worker"),
				RunRetryBudget:          rapid.IntRange(0, 50).Draw(rt, "retry_budget"),
				Speculative:             rapid.Bool().Draw(rt, "speculative"),
			},
		}
		runSim(rt, c, New(c.Opts), "run") // final invariants checked inside
	})
}

// TestPropertyArbitraryEvents drives the Scheduler with arbitrary event
// sequences — any worker, any token ever issued (zombies included), any
// clock jump, snapshots and restores — checking safety after every event,
// then drains with a fresh, well-behaved worker and checks the end state.
func TestPropertyArbitraryEvents(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		opts := Options{
			LeaseTTL:                10 * time.Second,
			MaxAttemptsPerPartition: rapid.IntRange(1, 6).Draw(rt, "max_attempts"),
			MaxFailuresPerWorker:    rapid.IntRange(1, 3).Draw(rt, "max_failures_per_worker"),
			RunRetryBudget:          rapid.IntRange(0, 10).Draw(rt, "retry_budget"),
			Speculative:             rapid.Bool().Draw(rt, "speculative"),
			SpeculateMinDone:        0.1,
		}
		s := New(opts)
		o := newOracle(opts.LeaseTTL)
		n := rapid.IntRange(1, 12).Draw(rt, "partitions")
		if err := s.AddRun("r", simPartitions(n)); err != nil {
			rt.Fatal(err)
		}
		workers := []WorkerID{"a", "b", "c"}
		var tokens []Token
		var discards []Discard
		now := t0
		steps := rapid.IntRange(0, 120).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			w := rapid.SampledFrom(workers).Draw(rt, "worker")
			switch rapid.IntRange(0, 9).Draw(rt, "event") {
			case 0:
				slots := rapid.IntRange(1, 3).Draw(rt, "slots")
				if err := s.Register(w, slots, now); err != nil {
					rt.Fatal(err)
				}
				o.registered(w, now)
			case 1:
				if _, err := s.Heartbeat(w, now); err == nil {
					o.contacted(w, now)
				}
			case 2, 3:
				ls, err := s.Acquire(w, now)
				if err == nil {
					o.acquired(rt, w, now, ls)
					for _, l := range ls {
						tokens = append(tokens, l.Token)
					}
				} else if !errors.Is(err, ErrUnknownWorker) {
					rt.Fatal(err)
				}
			case 4, 5:
				if len(tokens) > 0 {
					tok := rapid.SampledFrom(tokens).Draw(rt, "token")
					ok, why := s.Complete(tok, Result{}, now)
					o.completed(rt, tok, now, ok, why)
				}
			case 6:
				if len(tokens) > 0 {
					tok := rapid.SampledFrom(tokens).Draw(rt, "token")
					kind := Transient
					if rapid.IntRange(0, 9).Draw(rt, "permanent") == 0 {
						kind = Permanent
					}
					s.Fail(tok, kind, "x", now)
				}
			case 7:
				now = now.Add(time.Duration(rapid.IntRange(0, 15000).Draw(rt, "advance_ms")) * time.Millisecond)
				s.Tick(now)
			case 8:
				if err := s.Deregister(w, now); err == nil {
					o.registered(w, now) // its tokens are no longer valid
				}
			case 9:
				discards = append(discards, s.TakeDiscards()...)
				data, err := s.Snapshot()
				if err != nil {
					rt.Fatal(err)
				}
				policy := LeasePolicy(rapid.IntRange(0, 1).Draw(rt, "policy"))
				if s, err = Restore(data, now, policy); err != nil {
					rt.Fatal(err)
				}
				o.restored(now, policy)
			}
			checkCounts(rt, s, "r", n)
		}
		// Drain: the old workers go silent; a fresh one finishes the run.
		now = now.Add(opts.LeaseTTL)
		if err := s.Register("drain", 4, now); err != nil {
			rt.Fatal(err)
		}
		o.registered("drain", now)
		for i := 0; i < 10*n+10 && !s.Done("r"); i++ {
			if f, _ := s.Failed("r"); f {
				break
			}
			s.Tick(now)
			ls, err := s.Acquire("drain", now)
			if err != nil {
				rt.Fatal(err)
			}
			o.acquired(rt, "drain", now, ls)
			now = now.Add(time.Second)
			for _, l := range ls {
				ok, why := s.Complete(l.Token, Result{}, now)
				o.completed(rt, l.Token, now, ok, why)
			}
			checkCounts(rt, s, "r", n)
		}
		discards = append(discards, s.TakeDiscards()...)
		o.final(rt, s, "r", n, discards)
	})
}

// checkCounts: the run's counters agree with its per-partition states and
// at most one attempt per partition is accepted.
func checkCounts(t tb, s *Scheduler, run string, n int) {
	t.Helper()
	st, err := s.RunState(run)
	if err != nil {
		t.Fatal(err)
	}
	var c [4]int
	for _, p := range st.Partitions {
		c[p.State]++
		if (p.State == Done) != (p.Accepted != nil) {
			t.Fatalf("partition %s %s accepted=%v", p.ID, p.State, p.Accepted != nil)
		}
		if p.State != Leased && p.Running != 0 {
			t.Fatalf("partition %s %s has %d running attempts", p.ID, p.State, p.Running)
		}
		if p.State == Leased && (p.Running < 1 || p.Running > 2) {
			t.Fatalf("partition %s leased with %d running attempts", p.ID, p.Running)
		}
	}
	if got := fmt.Sprint(c); got != fmt.Sprint([4]int{st.Pending, st.Leased, st.Done, st.Failed}) || len(st.Partitions) != n {
		t.Fatalf("counts %+v vs states %s", st, got)
	}
}
