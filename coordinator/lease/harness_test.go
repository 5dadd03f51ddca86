package lease

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// oracle checks the scheduler from the outside, with its own model of which
// leases are valid: a lease is valid at t if its worker has not registered
// again (or been dropped by a restore) since the grant, and was last in
// contact (Register, Heartbeat, Acquire, or a KeepLeases restore) less than
// one TTL before t.
type oracle struct {
	ttl      time.Duration
	inc      map[WorkerID]int
	contact  map[WorkerID]time.Time
	issued   map[Token]issued
	accepted map[string]map[PartitionID]Token
	rejected []Token
}

type issued struct {
	run  string
	part PartitionID
	w    WorkerID
	inc  int
}

func newOracle(ttl time.Duration) *oracle {
	return &oracle{ttl: ttl, inc: map[WorkerID]int{}, contact: map[WorkerID]time.Time{},
		issued: map[Token]issued{}, accepted: map[string]map[PartitionID]Token{}}
}

func (o *oracle) registered(w WorkerID, now time.Time) { o.inc[w]++; o.contact[w] = now }
func (o *oracle) contacted(w WorkerID, now time.Time)  { o.contact[w] = now }

func (o *oracle) acquired(t tb, w WorkerID, now time.Time, ls []Lease) {
	o.contact[w] = now
	for _, l := range ls {
		if _, dup := o.issued[l.Token]; dup {
			t.Fatalf("token %s issued twice", l.Token)
		}
		if l.Worker != w {
			t.Fatalf("lease for %s handed to %s", l.Worker, w)
		}
		o.issued[l.Token] = issued{l.Run, l.Partition, w, o.inc[w]}
	}
}

func (o *oracle) restored(now time.Time, policy LeasePolicy) {
	for w := range o.inc {
		if policy == DropLeases {
			o.inc[w]++
			o.contact[w] = time.Time{}
		} else if !o.contact[w].IsZero() {
			// KeepLeases: the restored scheduler gives every worker it knew
			// a fresh TTL from the restore (the outage is not held against
			// them), whenever they were last heard from.
			o.contact[w] = now
		}
	}
}

func (o *oracle) completed(t tb, tok Token, now time.Time, ok bool, why Reason) {
	t.Helper()
	is, known := o.issued[tok]
	if !ok {
		o.rejected = append(o.rejected, tok)
		return
	}
	if !known {
		t.Fatalf("accepted unknown token %s", tok)
	}
	if o.inc[is.w] != is.inc || !now.Before(o.contact[is.w].Add(o.ttl)) {
		t.Fatalf("accepted %s of %s at %v: lease not valid (worker inc %d vs %d, last contact %v)",
			tok, is.w, now, o.inc[is.w], is.inc, o.contact[is.w])
	}
	m := o.accepted[is.run]
	if m == nil {
		m = map[PartitionID]Token{}
		o.accepted[is.run] = m
	}
	if prev, dup := m[is.part]; dup {
		t.Fatalf("partition %s/%s accepted twice: %s and %s", is.run, is.part, prev, tok)
	}
	m[is.part] = tok
}

// final checks a finished run: done runs have exactly one accepted attempt
// per partition, the one the oracle saw accepted; every issued lease is
// either accepted or discarded, exactly once; every rejected completion
// was discarded.
func (o *oracle) final(t tb, s *Scheduler, run string, n int, discards []Discard) {
	t.Helper()
	done, failed := s.Done(run), false
	failed, _ = s.Failed(run)
	if !done && !failed {
		st, _ := s.RunState(run)
		t.Fatalf("run %s neither done nor failed: pending %d leased %d done %d", run, st.Pending, st.Leased, st.Done)
	}
	acc := s.Accepted(run)
	if done {
		checkExactlyOnce(t, s, run)
		if len(acc) != n || len(o.accepted[run]) != n {
			t.Fatalf("done run: %d accepted, oracle %d, want %d", len(acc), len(o.accepted[run]), n)
		}
	}
	for _, a := range acc {
		if o.accepted[run][a.Partition] != a.Token {
			t.Fatalf("partition %s: scheduler accepted %s, oracle saw %s", a.Partition, a.Token, o.accepted[run][a.Partition])
		}
	}
	if len(acc) != len(o.accepted[run]) {
		t.Fatalf("scheduler has %d accepted, oracle %d", len(acc), len(o.accepted[run]))
	}
	disc := map[Token]bool{}
	for _, d := range discards {
		if disc[d.Lease.Token] {
			t.Fatalf("token %s discarded twice", d.Lease.Token)
		}
		disc[d.Lease.Token] = true
	}
	for _, a := range acc {
		if disc[a.Token] {
			t.Fatalf("accepted token %s also discarded", a.Token)
		}
	}
	for tok, is := range o.issued {
		if is.run != run {
			continue
		}
		if !disc[tok] && o.accepted[run][is.part] != tok {
			t.Fatalf("token %s (%s) neither accepted nor discarded", tok, is.part)
		}
	}
	for _, tok := range o.rejected {
		if !disc[tok] && !isAccepted(acc, tok) {
			t.Fatalf("rejected token %s not discarded", tok)
		}
	}
}

func isAccepted(acc []Attempt, tok Token) bool {
	for _, a := range acc {
		if a.Token == tok {
			return true
		}
	}
	return false
}

// simConfig drives the fake worker harness.
type simConfig struct {
	Seed       uint64
	Workers    int
	Slots      int
	Partitions int
	Opts       Options
	Heartbeat  time.Duration // worker heartbeat period
	Work       time.Duration // mean attempt duration
	PCrash     float64       // per attempt: the worker dies mid-attempt
	PHang      float64       // per attempt: the worker freezes 1–4 TTLs
	PTransient float64       // per attempt: transient failure
	PLate      float64       // an abandoned attempt still reports (zombie)
	PStraggle  float64       // a worker is 5× slower
	RestoreAt  int           // event number of a snapshot+restore (0: none)
	Policy     LeasePolicy
	MaxTime    time.Duration
	Check      bool // oracle checks (off in benchmarks)
	// Sample, when set, is called every SampleEvery events (benchmarks).
	Sample      func()
	SampleEvery int
	// AfterAdd, when set, is called right after AddRun (benchmarks).
	AfterAdd func()
}

type evKind uint8

const (
	evLoop evKind = iota
	evFinish
	evCrash
	evRestart
	evTick
)

type event struct {
	at   time.Time
	seq  uint64
	kind evKind
	w    int32
	inc  int32
	fail bool
	l    Lease
}

type evHeap []event

func (h evHeap) Len() int { return len(h) }
func (h evHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h evHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *evHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *evHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

type fakeWorker struct {
	id     WorkerID
	speed  float64
	inc    int32
	dead   bool
	hungTo time.Time
}

type simStats struct {
	Events, Leases, Copies, Accepted, Rejected, Fails, Crashes, Hangs, Late, Restores int
	Discards                                                                          []Discard
	Done, Failed                                                                      bool
	End                                                                               time.Time
	Sched                                                                             *Scheduler
}

// runSim runs one run of cfg.Partitions partitions against cfg.Workers fake
// workers on a simulated clock until the run is done or failed.
func runSim(t tb, cfg simConfig, s *Scheduler, run string) simStats {
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	ttl := s.Options().LeaseTTL
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = ttl / 3
	}
	if cfg.MaxTime == 0 {
		cfg.MaxTime = 1000 * time.Hour
	}
	var o *oracle
	if cfg.Check {
		o = newOracle(ttl)
	}
	var st simStats
	var h evHeap
	var seq uint64
	push := func(e event) { seq++; e.seq = seq; heap.Push(&h, e) }
	now := t0
	ws := make([]*fakeWorker, cfg.Workers)
	register := func(w *fakeWorker) {
		w.inc++
		if err := s.Register(w.id, cfg.Slots, now); err != nil {
			t.Fatal(err)
		}
		if o != nil {
			o.registered(w.id, now)
		}
	}
	// acquire asks for leases for worker i; a worker the scheduler no
	// longer knows registers again (a new incarnation: its old attempts are
	// abandoned, and so is its loop event, which carries the old
	// incarnation: the caller must start a new loop unless it is the loop).
	acquire := func(i int32) (reregistered bool) {
		w := ws[i]
		ls, err := s.Acquire(w.id, now)
		if errors.Is(err, ErrUnknownWorker) {
			register(w)
			reregistered = true
			ls, err = s.Acquire(w.id, now)
		}
		if err != nil {
			t.Fatal(err)
		}
		if o != nil {
			o.acquired(t, w.id, now, ls)
		}
		st.Leases += len(ls)
		for _, l := range ls {
			if l.Speculative {
				st.Copies++
			}
			d := time.Duration(float64(cfg.Work) * w.speed * (0.5 + rng.Float64()))
			e := event{at: now.Add(d), kind: evFinish, w: i, inc: w.inc, l: l}
			switch r := rng.Float64(); {
			case r < cfg.PCrash:
				push(event{at: now.Add(d / 2), kind: evCrash, w: i, inc: w.inc})
			case r < cfg.PCrash+cfg.PHang:
				st.Hangs++
				w.hungTo = now.Add(d/2 + time.Duration(1+rng.IntN(4))*ttl)
			case r < cfg.PCrash+cfg.PHang+cfg.PTransient:
				e.fail = true
			}
			push(e)
		}
		return reregistered
	}
	for i := range ws {
		sp := 0.5 + rng.Float64()
		if rng.Float64() < cfg.PStraggle {
			sp *= 5
		}
		ws[i] = &fakeWorker{id: WorkerID("w" + strconv.Itoa(i)), speed: sp}
		register(ws[i])
		push(event{at: now.Add(time.Duration(rng.Int64N(int64(cfg.Heartbeat)))), kind: evLoop, w: int32(i), inc: ws[i].inc})
	}
	if err := s.AddRun(run, simPartitions(cfg.Partitions)); err != nil {
		t.Fatal(err)
	}
	if cfg.AfterAdd != nil {
		cfg.AfterAdd()
	}
	push(event{at: now, kind: evTick})
	for h.Len() > 0 {
		if s.Done(run) {
			st.Done = true
			break
		}
		if f, _ := s.Failed(run); f {
			st.Failed = true
			break
		}
		e := heap.Pop(&h).(event)
		now = e.at
		if now.Sub(t0) > cfg.MaxTime {
			break
		}
		st.Events++
		if cfg.Sample != nil && st.Events%cfg.SampleEvery == 0 {
			cfg.Sample()
		}
		if cfg.RestoreAt > 0 && st.Events == cfg.RestoreAt {
			// Discards not yet taken travel in the snapshot; take them first
			// here, as a coordinator that processed them would have.
			st.Discards = append(st.Discards, s.TakeDiscards()...)
			data, err := s.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			s, err = Restore(data, now, cfg.Policy)
			if err != nil {
				t.Fatal(err)
			}
			if o != nil {
				o.restored(now, cfg.Policy)
			}
			st.Restores++
		}
		var w *fakeWorker
		if e.kind != evTick {
			w = ws[e.w]
		}
		switch e.kind {
		case evTick:
			s.Tick(now)
			push(event{at: now.Add(ttl / 4), kind: evTick})
		case evLoop:
			if w.dead || e.inc != w.inc {
				continue
			}
			if now.Before(w.hungTo) {
				e.at = w.hungTo
				push(e)
				continue
			}
			if _, err := s.Heartbeat(w.id, now); err == nil {
				if o != nil {
					o.contacted(w.id, now)
				}
			} else if !errors.Is(err, ErrUnknownWorker) {
				t.Fatal(err)
			}
			acquire(e.w) // re-registers when the heartbeat was refused
			e.at = now.Add(cfg.Heartbeat)
			e.inc = w.inc
			push(e)
		case evCrash:
			if w.dead || e.inc != w.inc {
				continue
			}
			st.Crashes++
			w.dead = true
			push(event{at: now.Add(time.Duration(1+rng.IntN(3)) * ttl), kind: evRestart, w: e.w})
		case evRestart:
			w.dead, w.hungTo = false, time.Time{}
			register(w)
			acquire(e.w)
			push(event{at: now.Add(cfg.Heartbeat), kind: evLoop, w: e.w, inc: w.inc})
		case evFinish:
			abandoned := w.dead || e.inc != w.inc
			if abandoned && rng.Float64() >= cfg.PLate {
				continue
			}
			if !abandoned && now.Before(w.hungTo) {
				e.at = w.hungTo // frozen: reports when it wakes up, maybe too late
				push(e)
				continue
			}
			if abandoned {
				st.Late++
			}
			if e.fail {
				st.Fails++
				s.Fail(e.l.Token, Transient, "flaky", now)
			} else {
				ok, why := s.Complete(e.l.Token, Result{RowsOut: 1}, now)
				if o != nil {
					o.completed(t, e.l.Token, now, ok, why)
				}
				if ok {
					st.Accepted++
				} else {
					st.Rejected++
				}
			}
			if !abandoned && acquire(e.w) {
				// Registered again (it had expired while working): its
				// heartbeat loop goes on as the new incarnation. Without
				// this every worker could vanish and a run stay pending
				// forever (found by TestPropertySimulation).
				push(event{at: now.Add(cfg.Heartbeat), kind: evLoop, w: e.w, inc: w.inc})
			}
		}
	}
	st.Discards = append(st.Discards, s.TakeDiscards()...)
	st.End, st.Sched = now, s
	if o != nil {
		o.final(t, s, run, cfg.Partitions, st.Discards)
	}
	return st
}

func simPartitions(n int) []PartitionID {
	ps := make([]PartitionID, n)
	for i := range ps {
		ps[i] = PartitionID(fmt.Sprintf("p%06d", i))
	}
	return ps
}

func TestHarness(t *testing.T) {
	base := simConfig{Workers: 8, Slots: 2, Partitions: 300, Work: time.Second, Check: true,
		Opts: Options{LeaseTTL: 3 * time.Second, MaxAttemptsPerPartition: 8, MaxFailuresPerWorker: 3}}
	tests := map[string]func(c *simConfig){
		"healthy":           func(c *simConfig) {},
		"crashes":           func(c *simConfig) { c.PCrash = 0.03 },
		"hangs and zombies": func(c *simConfig) { c.PHang = 0.03; c.PLate = 0.5 },
		"transient":         func(c *simConfig) { c.PTransient = 0.1 },
		"everything": func(c *simConfig) {
			c.PCrash, c.PHang, c.PTransient, c.PLate, c.PStraggle = 0.02, 0.02, 0.05, 0.5, 0.2
		},
		"speculative stragglers": func(c *simConfig) {
			c.PStraggle, c.PHang = 0.3, 0.02
			c.Opts.Speculative = true
		},
		"restore keeping leases": func(c *simConfig) {
			c.PCrash, c.PTransient, c.PLate, c.RestoreAt, c.Policy = 0.02, 0.05, 0.5, 200, KeepLeases
		},
		"restore dropping leases": func(c *simConfig) {
			c.PCrash, c.PTransient, c.PLate, c.RestoreAt, c.Policy = 0.02, 0.05, 0.5, 200, DropLeases
		},
	}
	for name, mod := range tests {
		t.Run(name, func(t *testing.T) {
			for seed := uint64(1); seed <= 5; seed++ {
				c := base
				c.Seed = seed
				mod(&c)
				st := runSim(t, c, New(c.Opts), "run")
				if !st.Done {
					t.Fatalf("seed %d: run failed: %v", seed, st)
				}
				if c.RestoreAt > 0 && st.Restores != 1 {
					t.Fatalf("seed %d: no restore happened", seed)
				}
				t.Logf("seed %d: events %d leases %d copies %d accepted %d rejected %d fails %d crashes %d hangs %d late %d discards %d sim %v",
					seed, st.Events, st.Leases, st.Copies, st.Accepted, st.Rejected, st.Fails, st.Crashes, st.Hangs, st.Late, len(st.Discards), st.End.Sub(t0))
			}
		})
	}
}

// TestHarnessDeterministic: the same seed gives the same final state.
func TestHarnessDeterministic(t *testing.T) {
	c := simConfig{Seed: 7, Workers: 5, Slots: 2, Partitions: 100, Work: time.Second, Check: true,
		PCrash: 0.02, PHang: 0.02, PTransient: 0.05, PLate: 0.5, RestoreAt: 150,
		Opts: Options{LeaseTTL: 3 * time.Second, MaxAttemptsPerPartition: 8, MaxFailuresPerWorker: 3, Speculative: true}}
	a, _ := runSim(t, c, New(c.Opts), "run").Sched.Snapshot()
	b, _ := runSim(t, c, New(c.Opts), "run").Sched.Snapshot()
	if string(a) != string(b) {
		t.Fatal("same seed, different final state")
	}
}

// tb is what the harness needs from *testing.T, *testing.B and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}
