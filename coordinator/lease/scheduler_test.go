package lease

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func ids(names ...string) []PartitionID {
	out := make([]PartitionID, len(names))
	for i, n := range names {
		out[i] = PartitionID(n)
	}
	return out
}

// fx wraps a Scheduler with fatal-on-error helpers for table tests.
type fx struct {
	t *testing.T
	s *Scheduler
}

func (f fx) register(w string, slots int, sec float64) {
	f.t.Helper()
	if err := f.s.Register(WorkerID(w), slots, at(sec)); err != nil {
		f.t.Fatal(err)
	}
}

func (f fx) acquire(w string, sec float64, want int) []Lease {
	f.t.Helper()
	ls, err := f.s.Acquire(WorkerID(w), at(sec))
	if err != nil {
		f.t.Fatal(err)
	}
	if len(ls) != want {
		f.t.Fatalf("%s acquired %d leases at %vs, want %d: %+v", w, len(ls), sec, want, ls)
	}
	return ls
}

func (f fx) complete(l Lease, sec float64, wantOK bool, want Reason) {
	f.t.Helper()
	ok, why := f.s.Complete(l.Token, Result{RowsOut: 1}, at(sec))
	if ok != wantOK || why != want {
		f.t.Fatalf("complete %s (%s on %s) at %vs = %v, %q; want %v, %q", l.Token, l.Partition, l.Worker, sec, ok, why, wantOK, want)
	}
}

func (f fx) fail(l Lease, kind ErrorKind, sec float64) {
	f.t.Helper()
	if ok, why := f.s.Fail(l.Token, kind, "boom", at(sec)); !ok {
		f.t.Fatalf("fail %s: %s", l.Token, why)
	}
}

func (f fx) state(run string) RunStatus {
	f.t.Helper()
	st, err := f.s.RunState(run)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f fx) wantFailed(run, substr string) {
	f.t.Helper()
	failed, why := f.s.Failed(run)
	if !failed || !strings.Contains(why, substr) {
		f.t.Fatalf("Failed(%s) = %v, %q; want failure containing %q", run, failed, why, substr)
	}
}

func (f fx) wantDone(run string) {
	f.t.Helper()
	if !f.s.Done(run) {
		f.t.Fatalf("run %s not done: %+v", run, f.state(run))
	}
	checkExactlyOnce(f.t, f.s, run)
}

// checkExactlyOnce: a done run has one accepted attempt per partition, and
// its tokens are distinct.
func checkExactlyOnce(t tb, s *Scheduler, run string) {
	t.Helper()
	st, err := s.RunState(run)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Token]bool{}
	for _, p := range st.Partitions {
		if p.Accepted == nil || p.State != Done || p.Accepted.Partition != p.ID || p.Running != 0 {
			t.Fatalf("partition %s: %+v", p.ID, p)
		}
		if seen[p.Accepted.Token] {
			t.Fatalf("token %s accepted twice", p.Accepted.Token)
		}
		seen[p.Accepted.Token] = true
	}
	if len(s.Accepted(run)) != len(st.Partitions) {
		t.Fatalf("Accepted has %d attempts, want %d", len(s.Accepted(run)), len(st.Partitions))
	}
}

func discardReasons(s *Scheduler) map[Token]Reason {
	m := map[Token]Reason{}
	for _, d := range s.TakeDiscards() {
		m[d.Lease.Token] = d.Reason
	}
	return m
}

func TestRules(t *testing.T) {
	tests := map[string]struct {
		opts Options
		run  func(f fx)
	}{
		"zombie completion after expiry is rejected, reassigned attempt accepted": {
			opts: Options{LeaseTTL: 10 * time.Second},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0"))
				f.register("a", 1, 0)
				f.register("b", 1, 0)
				la := f.acquire("a", 0, 1)[0]
				f.s.Heartbeat("b", at(8))
				f.s.Tick(at(10)) // a silent since 0: expired at 10
				lb := f.acquire("b", 10, 1)[0]
				if lb.Partition != "p0" || lb.Worker != "b" || lb.Attempt != 2 || lb.Token == la.Token {
					f.t.Fatalf("reassigned lease %+v", lb)
				}
				f.complete(la, 11, false, ReasonExpired)
				if _, err := f.s.Heartbeat("a", at(11)); !errors.Is(err, ErrUnknownWorker) {
					f.t.Fatalf("heartbeat of expired worker: %v", err)
				}
				f.complete(lb, 12, true, ReasonAccepted)
				f.wantDone("r")
				if got := f.state("r").Partitions[0].Accepted.Token; got != lb.Token {
					f.t.Fatalf("accepted %s, want %s", got, lb.Token)
				}
				if d := discardReasons(f.s); len(d) != 1 || d[la.Token] != ReasonExpired {
					f.t.Fatalf("discards %v", d)
				}
			},
		},
		"completion after TTL without Tick is rejected": {
			opts: Options{LeaseTTL: 10 * time.Second},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0"))
				f.register("a", 1, 0)
				l := f.acquire("a", 0, 1)[0]
				f.complete(l, 10, false, ReasonExpired)
				if st := f.state("r"); st.Pending != 1 || st.Partitions[0].Failures != 1 {
					f.t.Fatalf("state %+v", st)
				}
			},
		},
		"heartbeats keep a lease alive past its TTL": {
			opts: Options{LeaseTTL: 10 * time.Second},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0"))
				f.register("a", 1, 0)
				l := f.acquire("a", 0, 1)[0]
				for sec := 5.0; sec <= 60; sec += 5 {
					exp, err := f.s.Heartbeat("a", at(sec))
					if err != nil || !exp.Equal(at(sec+10)) {
						f.t.Fatalf("heartbeat at %v: %v %v", sec, exp, err)
					}
				}
				f.complete(l, 65, true, ReasonAccepted)
				f.wantDone("r")
			},
		},
		"duplicate completion is rejected and the first stays accepted": {
			run: func(f fx) {
				f.s.AddRun("r", ids("p0"))
				f.register("a", 1, 0)
				l := f.acquire("a", 0, 1)[0]
				f.complete(l, 1, true, ReasonAccepted)
				f.complete(l, 2, false, ReasonDuplicate)
				if ok, why := f.s.Fail(l.Token, Transient, "late", at(3)); ok || why != ReasonDuplicate {
					f.t.Fatalf("fail after accept: %v %s", ok, why)
				}
				f.wantDone("r")
				if d := f.s.TakeDiscards(); len(d) != 0 {
					f.t.Fatalf("discards %v", d)
				}
			},
		},
		"unknown token is rejected": {
			run: func(f fx) {
				f.s.AddRun("r", ids("p0"))
				if ok, why := f.s.Complete(Token(12345), Result{}, at(0)); ok || why != ReasonUnknown {
					f.t.Fatalf("got %v %s", ok, why)
				}
			},
		},
		"a worker that keeps failing a partition is not given it again": {
			opts: Options{MaxFailuresPerWorker: 2, MaxAttemptsPerPartition: 10},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0"))
				f.register("a", 1, 0)
				f.register("b", 1, 0)
				f.fail(f.acquire("a", 1, 1)[0], Transient, 1)
				f.fail(f.acquire("a", 2, 1)[0], Transient, 2)
				f.acquire("a", 3, 0) // excluded: p0 stays queued for others
				lb := f.acquire("b", 3, 1)[0]
				f.complete(lb, 4, true, ReasonAccepted)
				f.wantDone("r")
			},
		},
		"exclusion skips to the next partition": {
			opts: Options{MaxFailuresPerWorker: 1},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0", "p1"))
				f.register("a", 1, 0)
				f.register("b", 1, 0)
				l0 := f.acquire("a", 0, 1)[0]
				f.fail(l0, Transient, 1)
				la := f.acquire("a", 1, 1)[0]
				if la.Partition != "p1" {
					f.t.Fatalf("a got %s, want p1", la.Partition)
				}
				lb := f.acquire("b", 1, 1)[0]
				if lb.Partition != "p0" {
					f.t.Fatalf("b got %s, want p0", lb.Partition)
				}
			},
		},
		"partition fails when every registered worker is excluded": {
			opts: Options{MaxFailuresPerWorker: 2, MaxAttemptsPerPartition: 10},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0"))
				f.register("a", 1, 0)
				f.fail(f.acquire("a", 1, 1)[0], Transient, 1)
				f.fail(f.acquire("a", 2, 1)[0], Transient, 2)
				f.wantFailed("r", "every registered worker")
			},
		},
		"attempt limit per partition fails the run": {
			opts: Options{MaxAttemptsPerPartition: 3, MaxFailuresPerWorker: 100},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0", "p1"))
				f.register("a", 1, 0)
				f.fail(f.acquire("a", 1, 1)[0], Transient, 1) // p0 #1
				l := f.acquire("a", 2, 1)[0]                  // p1
				f.complete(l, 2, true, ReasonAccepted)
				f.fail(f.acquire("a", 3, 1)[0], Transient, 3) // p0 #2
				if failed, _ := f.s.Failed("r"); failed {
					f.t.Fatal("failed too early")
				}
				f.fail(f.acquire("a", 4, 1)[0], Transient, 4) // p0 #3
				f.wantFailed("r", "3 attempts failed")
				f.acquire("a", 5, 0)
				if st := f.state("r"); st.Failed != 1 || st.Done != 1 || st.Partitions[0].Attempts != 3 {
					f.t.Fatalf("state %+v", st)
				}
			},
		},
		"expiries count as failed attempts": {
			opts: Options{LeaseTTL: time.Second, MaxAttemptsPerPartition: 2, MaxFailuresPerWorker: 100},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0"))
				f.register("a", 1, 0)
				f.acquire("a", 0, 1)
				f.s.Tick(at(2))
				f.register("a", 1, 2)
				f.acquire("a", 2, 1)
				f.s.Tick(at(4))
				f.wantFailed("r", "expired")
			},
		},
		"run retry budget": {
			opts: Options{RunRetryBudget: 1, MaxAttemptsPerPartition: 5, MaxFailuresPerWorker: 100},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0", "p1", "p2"))
				f.register("a", 3, 0)
				ls := f.acquire("a", 0, 3)
				f.fail(ls[0], Transient, 1) // retry 1 of 1
				if failed, _ := f.s.Failed("r"); failed {
					f.t.Fatal("failed within budget")
				}
				f.fail(ls[1], Transient, 2) // budget exhausted
				f.wantFailed("r", "retry budget of 1 exhausted")
				// The run's other lease is revoked: its completion is refused.
				f.complete(ls[2], 3, false, ReasonRevoked)
				d := discardReasons(f.s)
				if d[ls[0].Token] != ReasonFailed || d[ls[1].Token] != ReasonFailed || d[ls[2].Token] != ReasonRevoked {
					f.t.Fatalf("discards %v", d)
				}
			},
		},
		"permanent error fails the run at once": {
			run: func(f fx) {
				f.s.AddRun("r", ids("p0", "p1"))
				f.s.AddRun("other", ids("q0"))
				f.register("a", 3, 0)
				ls := f.acquire("a", 0, 3)
				f.fail(ls[0], Permanent, 1)
				f.wantFailed("r", "permanent error: boom")
				f.complete(ls[2], 2, true, ReasonAccepted) // other run unaffected
				f.wantDone("other")
			},
		},
		"speculative copy on another worker, first finisher (the copy) wins": {
			opts: Options{Speculative: true, SpeculateAfter: 1.5, SpeculateMinDone: 0.5, LeaseTTL: time.Minute},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0", "p1", "p2", "p3"))
				f.register("a", 4, 0)
				ls := f.acquire("a", 0, 4)
				for _, l := range ls[:3] {
					f.complete(l, 10, true, ReasonAccepted) // median 10s
				}
				f.s.Tick(at(14))
				f.acquire("a", 14, 0) // nothing planned yet (14s <= 15s)
				f.s.Tick(at(16))
				f.acquire("a", 16, 0) // the copy must not go to the same worker
				f.register("b", 2, 16)
				cp := f.acquire("b", 16, 1)[0]
				if !cp.Speculative || cp.Partition != "p3" || cp.Attempt != 2 {
					f.t.Fatalf("copy %+v", cp)
				}
				if st := f.state("r"); st.Partitions[3].Running != 2 || st.Leased != 1 {
					f.t.Fatalf("state %+v", st)
				}
				f.s.Tick(at(30))
				f.acquire("b", 30, 0) // one copy only
				f.complete(cp, 31, true, ReasonAccepted)
				f.complete(ls[3], 32, false, ReasonSuperseded)
				f.wantDone("r")
				if d := discardReasons(f.s); len(d) != 1 || d[ls[3].Token] != ReasonSuperseded {
					f.t.Fatalf("discards %v", d)
				}
			},
		},
		"speculative copy, the original wins": {
			opts: Options{Speculative: true, LeaseTTL: time.Minute},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0", "p1"))
				f.register("a", 2, 0)
				f.register("b", 1, 0)
				ls := f.acquire("a", 0, 2)
				f.complete(ls[0], 10, true, ReasonAccepted)
				f.s.Heartbeat("b", at(20))
				f.s.Tick(at(20))
				cp := f.acquire("b", 20, 1)[0]
				f.complete(ls[1], 21, true, ReasonAccepted)
				f.complete(cp, 22, false, ReasonSuperseded)
				f.wantDone("r")
			},
		},
		"speculative copy failing leaves the original running": {
			opts: Options{Speculative: true, LeaseTTL: time.Minute},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0", "p1"))
				f.register("a", 2, 0)
				f.register("b", 1, 0)
				ls := f.acquire("a", 0, 2)
				f.complete(ls[0], 10, true, ReasonAccepted)
				f.s.Heartbeat("b", at(20))
				f.s.Tick(at(20))
				cp := f.acquire("b", 20, 1)[0]
				f.fail(cp, Transient, 21)
				if st := f.state("r"); st.Leased != 1 || st.Pending != 0 {
					f.t.Fatalf("state %+v", st)
				}
				f.complete(ls[1], 22, true, ReasonAccepted)
				f.wantDone("r")
			},
		},
		"deregistration returns leases uncharged": {
			opts: Options{MaxAttemptsPerPartition: 1},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0", "p1", "p2"))
				f.register("a", 2, 0)
				la := f.acquire("a", 0, 2)
				if err := f.s.Deregister("a", at(1)); err != nil {
					f.t.Fatal(err)
				}
				st := f.state("r")
				if st.Pending != 3 || st.Retries != 0 || st.Partitions[0].Failures != 0 {
					f.t.Fatalf("state %+v", st)
				}
				f.register("b", 3, 1)
				lb := f.acquire("b", 1, 3)
				if lb[0].Partition != la[0].Partition && lb[0].Partition != la[1].Partition {
					f.t.Fatalf("returned partitions not first: %+v", lb)
				}
				f.complete(la[0], 2, false, ReasonRevoked)
				for _, l := range lb {
					f.complete(l, 3, true, ReasonAccepted)
				}
				f.wantDone("r")
			},
		},
		"re-registering a worker expires its old incarnation's leases": {
			run: func(f fx) {
				f.s.AddRun("r", ids("p0"))
				f.register("a", 1, 0)
				old := f.acquire("a", 0, 1)[0]
				f.register("a", 1, 5)
				l := f.acquire("a", 5, 1)[0]
				f.complete(old, 6, false, ReasonExpired)
				f.complete(l, 6, true, ReasonAccepted)
				f.wantDone("r")
			},
		},
		"unknown worker must register": {
			run: func(f fx) {
				if _, err := f.s.Acquire("ghost", at(0)); !errors.Is(err, ErrUnknownWorker) {
					f.t.Fatal(err)
				}
				if err := f.s.Deregister("ghost", at(0)); !errors.Is(err, ErrUnknownWorker) {
					f.t.Fatal(err)
				}
				if err := f.s.Register("a", 0, at(0)); err == nil {
					f.t.Fatal("0 slots accepted")
				}
			},
		},
		"add run validation and empty runs": {
			run: func(f fx) {
				if err := f.s.AddRun("r", ids("p", "p")); err == nil {
					f.t.Fatal("duplicate partition accepted")
				}
				if err := f.s.AddRun("e", nil); err != nil || !f.s.Done("e") {
					f.t.Fatalf("empty run: %v", err)
				}
				if err := f.s.AddRun("e", nil); err == nil {
					f.t.Fatal("duplicate run accepted")
				}
			},
		},
		"slots bound the leases held": {
			run: func(f fx) {
				f.s.AddRun("r", ids("p0", "p1", "p2", "p3", "p4"))
				f.register("a", 2, 0)
				ls := f.acquire("a", 0, 2)
				f.acquire("a", 1, 0)
				f.complete(ls[0], 2, true, ReasonAccepted)
				f.acquire("a", 2, 1)
				if got := len(f.s.Leases("a")); got != 2 {
					f.t.Fatalf("%d leases held", got)
				}
			},
		},
		"restore mid-run keeping leases": {
			opts: Options{LeaseTTL: 10 * time.Second},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0", "p1", "p2"))
				f.register("a", 2, 0)
				ls := f.acquire("a", 0, 2)
				f.complete(ls[0], 1, true, ReasonAccepted)
				snap, err := f.s.Snapshot()
				if err != nil {
					f.t.Fatal(err)
				}
				s2, err := Restore(snap, at(100), KeepLeases) // long outage
				if err != nil {
					f.t.Fatal(err)
				}
				g := fx{f.t, s2}
				if got := g.state("r").Partitions[0].Accepted; got == nil || got.Token != ls[0].Token {
					f.t.Fatalf("accepted attempt lost: %+v", got)
				}
				if _, err := s2.Heartbeat("a", at(105)); err != nil { // a reconnects within a TTL
					f.t.Fatal(err)
				}
				g.complete(ls[1], 106, true, ReasonAccepted)
				g.complete(ls[0], 106, false, ReasonDuplicate)
				l := g.acquire("a", 106, 1)[0]
				if l.Token.Generation() != 1 || l.Partition != "p2" {
					f.t.Fatalf("new lease %+v", l)
				}
				g.complete(l, 107, true, ReasonAccepted)
				g.wantDone("r")
			},
		},
		"restore mid-run keeping leases, worker never returns": {
			opts: Options{LeaseTTL: 10 * time.Second},
			run: func(f fx) {
				f.s.AddRun("r", ids("p0"))
				f.register("a", 1, 0)
				la := f.acquire("a", 0, 1)[0]
				snap, _ := f.s.Snapshot()
				s2, _ := Restore(snap, at(100), KeepLeases)
				g := fx{f.t, s2}
				g.register("b", 1, 100)
				g.acquire("b", 105, 0)
				lb := g.acquire("b", 110, 1)[0]
				g.complete(la, 111, false, ReasonExpired)
				g.complete(lb, 112, true, ReasonAccepted)
				g.wantDone("r")
			},
		},
		"restore mid-run dropping leases": {
			run: func(f fx) {
				f.s.AddRun("r", ids("p0", "p1"))
				f.register("a", 2, 0)
				ls := f.acquire("a", 0, 2)
				f.complete(ls[0], 1, true, ReasonAccepted)
				snap, _ := f.s.Snapshot()
				s2, err := Restore(snap, at(2), DropLeases)
				if err != nil {
					f.t.Fatal(err)
				}
				g := fx{f.t, s2}
				if _, err := s2.Heartbeat("a", at(3)); !errors.Is(err, ErrUnknownWorker) {
					f.t.Fatalf("worker survived DropLeases: %v", err)
				}
				g.complete(ls[1], 3, false, ReasonRevoked)
				if d := discardReasons(s2); d[ls[1].Token] != ReasonRevoked {
					f.t.Fatalf("discards %v", d)
				}
				g.register("a", 2, 3)
				l := g.acquire("a", 3, 1)[0]
				if l.Partition != "p1" || l.Attempt != 2 || g.state("r").Partitions[1].Failures != 0 {
					f.t.Fatalf("lease %+v", l)
				}
				g.complete(l, 4, true, ReasonAccepted)
				g.wantDone("r")
			},
		},
		"forget drops a run": {
			run: func(f fx) {
				f.s.AddRun("r", ids("p0"))
				f.register("a", 1, 0)
				l := f.acquire("a", 0, 1)[0]
				f.complete(l, 1, true, ReasonAccepted)
				f.s.Forget("r")
				f.complete(l, 2, false, ReasonUnknown)
				if _, err := f.s.RunState("r"); !errors.Is(err, ErrUnknownRun) {
					f.t.Fatal(err)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.run(fx{t, New(tc.opts)})
		})
	}
}

func TestTokenString(t *testing.T) {
	tok := Token(uint64(3)<<seqBits | 42)
	if tok.String() != "3.42" || tok.Generation() != 3 {
		t.Fatalf("%s %d", tok, tok.Generation())
	}
}

func TestSnapshotRoundTripIsStable(t *testing.T) {
	s := New(Options{Speculative: true})
	s.AddRun("r", ids("p0", "p1", "p2", "p3"))
	s.Register("a", 2, at(0))
	ls, _ := s.Acquire("a", at(0))
	s.Complete(ls[0].Token, Result{Output: []byte(`{"files":["x"]}`)}, at(1))
	s.Fail(ls[1].Token, Transient, "x", at(1))
	a, _ := s.Snapshot()
	s2, err := Restore(a, at(1), KeepLeases)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s2.Snapshot()
	s3, _ := Restore(b, at(1), KeepLeases)
	c, _ := s3.Snapshot()
	// Generations differ by one restore; everything else is equal.
	if strings.Replace(string(b), `"generation":1`, `"generation":2`, 1) != string(c) {
		t.Fatalf("snapshot not stable:\n%s\n%s", b, c)
	}
	if got := s3.Accepted("r")[0].Result.Output; string(got) != `{"files":["x"]}` {
		t.Fatalf("result %s", got)
	}
}
