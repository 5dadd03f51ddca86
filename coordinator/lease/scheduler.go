package lease

import (
	"container/heap"
	"fmt"
	"time"
)

// maxSkip bounds how many queued partitions one Acquire may pass over
// because the asking worker is excluded from them (or, for copies, already
// runs them), keeping Acquire O(slots + maxSkip).
const maxSkip = 64

type leaseState uint8

const (
	leaseActive leaseState = iota
	leaseAccepted
	leaseFailed
	leaseExpired
	leaseSuperseded
	leaseRevoked
)

var leaseReasons = [...]Reason{ReasonAccepted, ReasonAccepted, ReasonFailed, ReasonExpired, ReasonSuperseded, ReasonRevoked}

type leaseRec struct {
	Lease
	state    leaseState
	run      *run
	part     int32
	wk       *worker // while active
	slot     int     // index in wk.leases
	finished time.Time
	result   Result
}

type worker struct {
	id       WorkerID
	slots    int
	deadline time.Time
	heapIdx  int
	leases   []*leaseRec
}

type part struct {
	id       PartitionID
	state    State
	queued   bool
	copied   bool // a speculative copy was planned for the current primary
	attempts int32
	failures int32
	active   []*leaseRec
	accepted *leaseRec
	excluded map[WorkerID]int32
}

type run struct {
	id      string
	parts   []part
	index   map[PartitionID]int32
	pending int
	leased  int
	done    int
	failed  int
	retries int
	err     string
	med     median
	running deque[*leaseRec] // primary leases in grant order (speculation)
	tokens  []Token          // every lease issued, for Forget
}

type entry struct {
	r   *run
	idx int32
}

// Scheduler is the lease state machine. Create it with New or Restore. It
// is not safe for concurrent use.
type Scheduler struct {
	opts     Options
	now      time.Time
	gen      uint32
	seq      uint64
	workers  map[WorkerID]*worker
	wheap    workerHeap
	runs     map[string]*run
	order    []*run // runs in AddRun order, finished ones pruned lazily
	leases   map[Token]*leaseRec
	pending  deque[entry]
	spec     deque[*leaseRec]
	discards []Discard
}

// New returns an empty Scheduler.
func New(o Options) *Scheduler {
	return &Scheduler{
		opts:    o.withDefaults(),
		workers: map[WorkerID]*worker{},
		runs:    map[string]*run{},
		leases:  map[Token]*leaseRec{},
	}
}

// NewGeneration returns an empty Scheduler whose tokens carry generation
// gen: a coordinator process that journals a generation counter and starts
// each incarnation with the next one never issues a token an earlier
// incarnation issued, so a completion from before a restart can never be
// taken for a lease of the new one.
func NewGeneration(o Options, gen uint32) (*Scheduler, error) {
	if uint64(gen) >= 1<<(64-seqBits) {
		return nil, fmt.Errorf("lease generation %d out of range", gen)
	}
	s := New(o)
	s.gen = gen
	return s, nil
}

// Options returns the effective options (defaults filled in).
func (s *Scheduler) Options() Options { return s.opts }

// advance moves the clock to now (never backwards: an earlier now is taken
// as the current time) and expires every worker, with its leases, whose
// deadline has passed. A lease is valid while now < Expires.
func (s *Scheduler) advance(now time.Time) time.Time {
	if now.Before(s.now) {
		now = s.now
	}
	s.now = now
	for len(s.wheap) > 0 && !s.wheap[0].deadline.After(now) {
		w := s.wheap[0]
		s.removeWorker(w)
		s.expireLeases(w)
	}
	return now
}

func (s *Scheduler) removeWorker(w *worker) {
	if w.heapIdx >= 0 {
		heap.Remove(&s.wheap, w.heapIdx)
	}
	delete(s.workers, w.id)
}

// expireLeases ends every lease of w as expired and retries its partitions.
func (s *Scheduler) expireLeases(w *worker) {
	for len(w.leases) > 0 {
		l := w.leases[len(w.leases)-1]
		s.endLease(l, leaseExpired)
		s.afterFailure(l.run, l.part, w.id, fmt.Sprintf("attempt %d on worker %s expired", l.Attempt, w.id))
	}
}

func (s *Scheduler) touch(w *worker, now time.Time) {
	w.deadline = now.Add(s.opts.LeaseTTL)
	heap.Fix(&s.wheap, w.heapIdx)
}

// AddRun queues the partitions of a run. runID is whatever key the caller
// schedules by (e.g. run id, task and stage). Partition IDs must be unique
// within the run. A run without partitions is done at once.
func (s *Scheduler) AddRun(runID string, partitions []PartitionID) error {
	if _, ok := s.runs[runID]; ok {
		return fmt.Errorf("add run %q: already added", runID)
	}
	r := &run{id: runID, parts: make([]part, len(partitions)), index: make(map[PartitionID]int32, len(partitions))}
	for i, id := range partitions {
		if _, dup := r.index[id]; dup {
			return fmt.Errorf("add run %q: partition %q listed twice", runID, id)
		}
		r.index[id] = int32(i)
		r.parts[i] = part{id: id, queued: true}
	}
	r.pending = len(partitions)
	s.runs[runID] = r
	s.order = append(s.order, r)
	for i := range r.parts {
		s.pending.PushBack(entry{r, int32(i)})
	}
	return nil
}

// Register adds a worker with slots concurrent attempts. Registering an ID
// that is already registered starts a new incarnation: the old one's
// leases expire (it is taken to have crashed and restarted).
func (s *Scheduler) Register(id WorkerID, slots int, now time.Time) error {
	now = s.advance(now)
	if slots < 1 {
		return fmt.Errorf("register worker %s: %d slots", id, slots)
	}
	if old := s.workers[id]; old != nil {
		s.removeWorker(old)
		s.expireLeases(old)
	}
	w := &worker{id: id, slots: slots, deadline: now.Add(s.opts.LeaseTTL)}
	s.workers[id] = w
	heap.Push(&s.wheap, w)
	return nil
}

// Heartbeat extends the worker and all its leases to now+LeaseTTL and
// returns that time. ErrUnknownWorker means the worker expired (its leases
// are gone) and must Register again and drop its in-flight attempts.
func (s *Scheduler) Heartbeat(id WorkerID, now time.Time) (time.Time, error) {
	now = s.advance(now)
	w := s.workers[id]
	if w == nil {
		return time.Time{}, fmt.Errorf("heartbeat %s: %w", id, ErrUnknownWorker)
	}
	s.touch(w, now)
	return w.deadline, nil
}

// Deregister removes a worker that leaves on purpose (drain, scale-down).
// Its leases are revoked and their partitions re-queued at the front; this
// does not count against attempt limits or the retry budget.
func (s *Scheduler) Deregister(id WorkerID, now time.Time) error {
	s.advance(now)
	w := s.workers[id]
	if w == nil {
		return fmt.Errorf("deregister %s: %w", id, ErrUnknownWorker)
	}
	s.removeWorker(w)
	for len(w.leases) > 0 {
		l := w.leases[len(w.leases)-1]
		s.endLease(l, leaseRevoked)
		p := &l.run.parts[l.part]
		if len(p.active) == 0 && p.state == Leased && l.run.err == "" {
			s.requeue(l.run, l.part, true)
		}
	}
	return nil
}

// Acquire hands the worker up to its free slots of leases: pending
// partitions first (in queue order, skipping those it is excluded from),
// then planned speculative copies of partitions running on other workers.
// Acquire also counts as a heartbeat.
func (s *Scheduler) Acquire(id WorkerID, now time.Time) ([]Lease, error) {
	now = s.advance(now)
	w := s.workers[id]
	if w == nil {
		return nil, fmt.Errorf("acquire %s: %w", id, ErrUnknownWorker)
	}
	s.touch(w, now)
	free := w.slots - len(w.leases)
	if free <= 0 {
		return nil, nil
	}
	var out []Lease
	var skipped []entry
	for free > 0 && s.pending.Len() > 0 && len(skipped) < maxSkip {
		e := s.pending.PopFront()
		p := &e.r.parts[e.idx]
		if e.r.err != "" || p.state != Pending {
			p.queued = false
			continue
		}
		if s.excluded(p, id) {
			if s.excludedEverywhere(p) {
				// Every worker now registered (e.g. the excluded one, back
				// under the same ID) has failed it: nobody may run it.
				p.queued = false
				s.failPartition(e.r, e.idx, fmt.Sprintf("partition %s: every registered worker failed it %d times", p.id, s.opts.MaxFailuresPerWorker))
				continue
			}
			skipped = append(skipped, e)
			continue
		}
		p.queued = false
		out = append(out, s.grant(w, e.r, e.idx, false, now).Lease)
		free--
	}
	for i := len(skipped) - 1; i >= 0; i-- {
		s.pending.PushFront(skipped[i])
	}
	var held []*leaseRec
	for free > 0 && s.spec.Len() > 0 && len(held) < maxSkip {
		prim := s.spec.PopFront()
		p := &prim.run.parts[prim.part]
		if prim.state != leaseActive || len(p.active) != 1 || prim.run.err != "" {
			continue
		}
		if prim.Worker == id || s.excluded(p, id) {
			held = append(held, prim)
			continue
		}
		out = append(out, s.grant(w, prim.run, prim.part, true, now).Lease)
		free--
	}
	for i := len(held) - 1; i >= 0; i-- {
		s.spec.PushFront(held[i])
	}
	return out, nil
}

func (s *Scheduler) excluded(p *part, id WorkerID) bool {
	return p.excluded != nil && p.excluded[id] >= int32(s.opts.MaxFailuresPerWorker)
}

func (s *Scheduler) grant(w *worker, r *run, idx int32, speculative bool, now time.Time) *leaseRec {
	s.seq++
	tok := Token(uint64(s.gen)<<seqBits | s.seq)
	p := &r.parts[idx]
	p.attempts++
	l := &leaseRec{
		Lease: Lease{Token: tok, Run: r.id, Partition: p.id, Attempt: int(p.attempts), Worker: w.id,
			Speculative: speculative, Granted: now, Expires: w.deadline},
		run: r, part: idx,
	}
	s.attach(l, w)
	if p.state == Pending {
		p.state = Leased
		r.pending--
		r.leased++
	}
	if !speculative {
		p.copied = false
		if s.opts.Speculative {
			r.running.PushBack(l)
		}
	}
	return l
}

// attach makes l an active lease held by w.
func (s *Scheduler) attach(l *leaseRec, w *worker) {
	l.state, l.wk, l.slot = leaseActive, w, len(w.leases)
	w.leases = append(w.leases, l)
	p := &l.run.parts[l.part]
	p.active = append(p.active, l)
	s.leases[l.Token] = l
	l.run.tokens = append(l.run.tokens, l.Token)
}

// endLease detaches an active lease from its worker and partition. Every
// end other than acceptance is reported as a Discard.
func (s *Scheduler) endLease(l *leaseRec, st leaseState) {
	w := l.wk
	l.Expires = w.deadline
	last := w.leases[len(w.leases)-1]
	w.leases[l.slot] = last
	last.slot = l.slot
	w.leases[len(w.leases)-1] = nil
	w.leases = w.leases[:len(w.leases)-1]
	l.wk = nil
	p := &l.run.parts[l.part]
	for i, a := range p.active {
		if a == l {
			p.active = append(p.active[:i], p.active[i+1:]...)
			break
		}
	}
	if len(p.active) == 0 {
		p.active = nil
	}
	l.state = st
	if st != leaseAccepted {
		s.discards = append(s.discards, Discard{Lease: l.Lease, Reason: leaseReasons[st], Running: st != leaseFailed})
	}
}

// afterFailure charges a failed or expired attempt to the partition and the
// worker, then retries the partition or fails it (and the run).
func (s *Scheduler) afterFailure(r *run, idx int32, wid WorkerID, what string) {
	p := &r.parts[idx]
	p.failures++
	if p.excluded == nil {
		p.excluded = map[WorkerID]int32{}
	}
	p.excluded[wid]++
	if r.err != "" || len(p.active) > 0 || p.state != Leased {
		return // run over, or a copy still runs
	}
	switch {
	case int(p.failures) >= s.opts.MaxAttemptsPerPartition:
		s.failPartition(r, idx, fmt.Sprintf("partition %s: %d attempts failed; last: %s", p.id, p.failures, what))
	case s.opts.RunRetryBudget > 0 && r.retries >= s.opts.RunRetryBudget:
		s.failPartition(r, idx, fmt.Sprintf("partition %s: run retry budget of %d exhausted; last: %s", p.id, s.opts.RunRetryBudget, what))
	case s.excludedEverywhere(p):
		s.failPartition(r, idx, fmt.Sprintf("partition %s: every registered worker failed it %d times; last: %s", p.id, s.opts.MaxFailuresPerWorker, what))
	default:
		r.retries++
		s.requeue(r, idx, false)
	}
}

// excludedEverywhere reports whether every registered worker is excluded
// from p: O(workers that failed p), not O(workers).
func (s *Scheduler) excludedEverywhere(p *part) bool {
	if len(s.workers) == 0 {
		return false
	}
	n := 0
	for id, c := range p.excluded {
		if c >= int32(s.opts.MaxFailuresPerWorker) && s.workers[id] != nil {
			n++
		}
	}
	return n >= len(s.workers)
}

func (s *Scheduler) requeue(r *run, idx int32, front bool) {
	p := &r.parts[idx]
	if p.state == Leased {
		r.leased--
		r.pending++
	}
	p.state = Pending
	if p.queued {
		return
	}
	p.queued = true
	if front {
		s.pending.PushFront(entry{r, idx})
	} else {
		s.pending.PushBack(entry{r, idx})
	}
}

func (s *Scheduler) failPartition(r *run, idx int32, reason string) {
	p := &r.parts[idx]
	switch p.state {
	case Pending:
		r.pending--
	case Leased:
		r.leased--
	}
	p.state = Failed
	r.failed++
	s.failRun(r, reason)
}

// failRun marks the run failed and revokes its active leases: O(run), once.
func (s *Scheduler) failRun(r *run, reason string) {
	if r.err != "" {
		return
	}
	r.err = reason
	for i := range r.parts {
		p := &r.parts[i]
		for len(p.active) > 0 {
			s.endLease(p.active[0], leaseRevoked)
		}
		if p.state == Leased {
			p.state = Pending
			r.leased--
			r.pending++
		}
	}
}

// Complete reports a successful attempt. It is accepted only if the lease
// is still valid (active and not expired at now) — then the partition is
// done with exactly this attempt, and any other attempt still running for
// it is superseded (reported by TakeDiscards). Otherwise it is rejected
// with the reason; a rejected attempt's output must never be committed
// (ReasonDuplicate excepted: that attempt is the accepted one).
func (s *Scheduler) Complete(tok Token, res Result, now time.Time) (bool, Reason) {
	now = s.advance(now)
	l := s.leases[tok]
	if l == nil {
		return false, ReasonUnknown
	}
	switch l.state {
	case leaseActive:
	case leaseAccepted:
		return false, ReasonDuplicate
	default:
		return false, leaseReasons[l.state]
	}
	r, p := l.run, &l.run.parts[l.part]
	l.result, l.finished = res, now
	s.endLease(l, leaseAccepted)
	for len(p.active) > 0 {
		s.endLease(p.active[0], leaseSuperseded)
	}
	p.state, p.accepted = Done, l
	r.leased--
	r.done++
	r.med.Add(now.Sub(l.Granted))
	return true, ReasonAccepted
}

// Fail reports a failed attempt. A permanent error fails the partition and
// the run; a transient one re-queues the partition unless its attempts,
// the run's retry budget or its eligible workers are exhausted. Events on
// leases that are no longer active are ignored (false and the reason).
func (s *Scheduler) Fail(tok Token, kind ErrorKind, msg string, now time.Time) (bool, Reason) {
	s.advance(now)
	l := s.leases[tok]
	if l == nil {
		return false, ReasonUnknown
	}
	if l.state != leaseActive {
		if l.state == leaseAccepted {
			return false, ReasonDuplicate
		}
		return false, leaseReasons[l.state]
	}
	wid := l.Worker
	s.endLease(l, leaseFailed)
	what := fmt.Sprintf("attempt %d on worker %s: %s error: %s", l.Attempt, wid, kind, msg)
	if kind == Permanent {
		p := &l.run.parts[l.part]
		p.failures++
		if l.run.err == "" && p.state == Leased {
			s.failPartition(l.run, l.part, fmt.Sprintf("partition %s: %s", p.id, what))
		}
		return true, ReasonAccepted
	}
	s.afterFailure(l.run, l.part, wid, what)
	return true, ReasonAccepted
}

// Tick expires leases whose TTL passed and, with Speculative, plans copies
// of stragglers: attempts running longer than SpeculateAfter × the median
// of the run's finished partitions, once SpeculateMinDone of the run is
// done. Each attempt is examined O(1) times over its life (the running
// queue is in grant order); the cost per Tick is O(live runs + planned).
func (s *Scheduler) Tick(now time.Time) {
	now = s.advance(now)
	live := s.order[:0]
	for _, r := range s.order {
		if r.err != "" || r.done == len(r.parts) {
			r.running = deque[*leaseRec]{}
			continue
		}
		live = append(live, r)
		if !s.opts.Speculative || r.med.Len() == 0 || float64(r.done) < s.opts.SpeculateMinDone*float64(len(r.parts)) {
			continue
		}
		limit := time.Duration(s.opts.SpeculateAfter * float64(r.med.Median()))
		for r.running.Len() > 0 {
			l := r.running.Front()
			p := &r.parts[l.part]
			if l.state != leaseActive || p.copied || len(p.active) != 1 {
				r.running.PopFront()
				continue
			}
			if now.Sub(l.Granted) <= limit {
				break
			}
			r.running.PopFront()
			p.copied = true
			s.spec.PushBack(l)
		}
	}
	clear(s.order[len(live):])
	s.order = live
}

// TakeDiscards returns, and forgets, the attempts that ended without being
// accepted since the last call, in the order they ended. Each non-accepted
// lease appears exactly once over the Scheduler's life.
func (s *Scheduler) TakeDiscards() []Discard {
	d := s.discards
	s.discards = nil
	return d
}

// Done reports whether every partition of the run has its accepted attempt.
func (s *Scheduler) Done(runID string) bool {
	r := s.runs[runID]
	return r != nil && r.err == "" && r.done == len(r.parts)
}

// Failed reports whether the run failed, and why.
func (s *Scheduler) Failed(runID string) (bool, string) {
	r := s.runs[runID]
	if r == nil || r.err == "" {
		return false, ""
	}
	return true, r.err
}

// Accepted returns the accepted attempt of every done partition of the run,
// in partition order: exactly what the job commit publishes.
func (s *Scheduler) Accepted(runID string) []Attempt {
	r := s.runs[runID]
	if r == nil {
		return nil
	}
	out := make([]Attempt, 0, r.done)
	for i := range r.parts {
		if a := r.parts[i].accepted; a != nil {
			out = append(out, a.attempt())
		}
	}
	return out
}

func (l *leaseRec) attempt() Attempt {
	return Attempt{Lease: l.Lease, Finished: l.finished, Result: l.result}
}

// RunState returns the run's progress and per-partition status: O(run).
func (s *Scheduler) RunState(runID string) (RunStatus, error) {
	r := s.runs[runID]
	if r == nil {
		return RunStatus{}, fmt.Errorf("run %q: %w", runID, ErrUnknownRun)
	}
	st := RunStatus{ID: r.id, Pending: r.pending, Leased: r.leased, Done: r.done, Failed: r.failed,
		Retries: r.retries, Error: r.err, Partitions: make([]PartitionStatus, len(r.parts))}
	for i := range r.parts {
		p := &r.parts[i]
		ps := PartitionStatus{ID: p.id, State: p.state, Attempts: int(p.attempts), Failures: int(p.failures), Running: len(p.active)}
		if p.accepted != nil {
			a := p.accepted.attempt()
			ps.Accepted = &a
		}
		st.Partitions[i] = ps
	}
	return st, nil
}

// Leases returns the worker's active leases with their current expiry.
func (s *Scheduler) Leases(id WorkerID) []Lease {
	w := s.workers[id]
	if w == nil {
		return nil
	}
	out := make([]Lease, len(w.leases))
	for i, l := range w.leases {
		out[i] = l.Lease
		out[i].Expires = w.deadline
	}
	return out
}

// Forget drops a finished run's state once its job commit is over (or it
// was abandoned); its active leases, if any, are revoked. Later events on
// its tokens get ReasonUnknown. O(run).
func (s *Scheduler) Forget(runID string) {
	r := s.runs[runID]
	if r == nil {
		return
	}
	if r.err == "" {
		r.err = "forgotten"
	}
	for i := range r.parts {
		p := &r.parts[i]
		for len(p.active) > 0 {
			s.endLease(p.active[0], leaseRevoked)
		}
	}
	for _, t := range r.tokens {
		delete(s.leases, t)
	}
	delete(s.runs, runID)
	// r stays in s.order and the queues until pruned lazily (r.err != "").
}
