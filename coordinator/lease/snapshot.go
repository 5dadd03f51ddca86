package lease

import (
	"cmp"
	"container/heap"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// LeasePolicy says what Restore does with the leases that were in flight
// when the snapshot was taken.
type LeasePolicy int

const (
	// KeepLeases restores in-flight leases and the workers holding them,
	// with a fresh TTL from the restore time: a worker that reconnects and
	// heartbeats within one TTL keeps its work and may complete it; a
	// worker that died meanwhile is expired one TTL later and its
	// partitions reassigned. This is the default: nothing is recomputed
	// needlessly, and exactly-once still holds because tokens are checked.
	KeepLeases LeasePolicy = iota
	// DropLeases revokes every in-flight lease (reported by TakeDiscards,
	// not charged as failures) and forgets the workers, which must
	// Register again; their partitions are pending again.
	DropLeases
)

const snapshotVersion = 1

type snapshot struct {
	Version  int          `json:"version"`
	Options  Options      `json:"options"`
	Now      time.Time    `json:"now"`
	Gen      uint32       `json:"generation"`
	Seq      uint64       `json:"sequence"`
	Workers  []snapWorker `json:"workers"`
	Runs     []snapRun    `json:"runs"`
	Leases   []Lease      `json:"leases"` // active only
	Discards []Discard    `json:"discards,omitempty"`
}

type snapWorker struct {
	ID    WorkerID `json:"id"`
	Slots int      `json:"slots"`
}

type snapRun struct {
	ID         string     `json:"id"`
	Retries    int        `json:"retries,omitempty"`
	Error      string     `json:"error,omitempty"`
	Durations  []int64    `json:"durations,omitempty"`
	Partitions []snapPart `json:"partitions"`
	Pending    []int32    `json:"pending_order,omitempty"`
	Copies     []Token    `json:"copy_order,omitempty"`
}

type snapPart struct {
	ID       PartitionID        `json:"id"`
	State    State              `json:"state"`
	Attempts int32              `json:"attempts,omitempty"`
	Failures int32              `json:"failures,omitempty"`
	Copied   bool               `json:"copied,omitempty"`
	Excluded map[WorkerID]int32 `json:"excluded,omitempty"`
	Accepted *Attempt           `json:"accepted,omitempty"`
}

// Snapshot serialises the whole state as JSON: options, clock, token
// generation, workers, runs with per-partition state and accepted attempts,
// active leases and not yet taken discards. The pending order is kept. It
// is O(state); a coordinator journals it (or its own incremental log) before
// acknowledging events, so that what a worker was told is never lost.
func (s *Scheduler) Snapshot() ([]byte, error) {
	sn := snapshot{Version: snapshotVersion, Options: s.opts, Now: s.now, Gen: s.gen, Seq: s.seq, Discards: s.discards}
	for _, w := range s.workers {
		sn.Workers = append(sn.Workers, snapWorker{ID: w.id, Slots: w.slots})
		for _, l := range w.leases {
			sn.Leases = append(sn.Leases, l.Lease)
		}
	}
	slices.SortFunc(sn.Workers, func(a, b snapWorker) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(sn.Leases, func(a, b Lease) int { return cmp.Compare(a.Token, b.Token) })
	pos := map[*run]int{}
	for _, r := range s.ordered() {
		pos[r] = len(sn.Runs)
		sr := snapRun{ID: r.id, Retries: r.retries, Error: r.err, Durations: r.med.values(), Partitions: make([]snapPart, len(r.parts))}
		for i := range r.parts {
			p := &r.parts[i]
			sp := snapPart{ID: p.id, State: p.state, Attempts: p.attempts, Failures: p.failures, Copied: p.copied, Excluded: p.excluded}
			if p.accepted != nil {
				a := p.accepted.attempt()
				sp.Accepted = &a
			}
			sr.Partitions[i] = sp
		}
		sn.Runs = append(sn.Runs, sr)
	}
	// Pending order: walk the queue once (entries of finished runs skipped).
	for i := 0; i < s.pending.Len(); i++ {
		e := s.pending.buf[(s.pending.head+i)%len(s.pending.buf)]
		if k, ok := pos[e.r]; ok && e.r.parts[e.idx].state == Pending && e.r.err == "" {
			sn.Runs[k].Pending = append(sn.Runs[k].Pending, e.idx)
		}
	}
	for i := 0; i < s.spec.Len(); i++ {
		l := s.spec.buf[(s.spec.head+i)%len(s.spec.buf)]
		if k, ok := pos[l.run]; ok && l.state == leaseActive {
			sn.Runs[k].Copies = append(sn.Runs[k].Copies, l.Token)
		}
	}
	return json.Marshal(sn)
}

// ordered returns the known runs in AddRun order.
func (s *Scheduler) ordered() []*run {
	seen := map[*run]bool{}
	var out []*run
	for _, r := range s.order {
		if s.runs[r.id] == r && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	// Finished runs were pruned from s.order; keep them, sorted by ID, first.
	var fin []*run
	for _, r := range s.runs {
		if !seen[r] {
			fin = append(fin, r)
		}
	}
	slices.SortFunc(fin, func(a, b *run) int { return cmp.Compare(a.id, b.id) })
	return append(fin, out...)
}

// Restore rebuilds a Scheduler from a Snapshot at time now (the later of
// now and the snapshot's clock). Accepted attempts, failures, exclusions,
// retry counts and the pending order are kept as they were; nothing already
// accepted is recomputed. In-flight leases follow policy. The restored
// Scheduler issues tokens of a new generation, so a token handed out after
// the snapshot by the previous incarnation can never match a new lease;
// the caller must journal a Snapshot of the restored Scheduler before
// handing out leases, so that a second restart bumps the generation again.
func Restore(data []byte, now time.Time, policy LeasePolicy) (*Scheduler, error) {
	var sn snapshot
	if err := json.Unmarshal(data, &sn); err != nil {
		return nil, fmt.Errorf("restore lease snapshot: %w", err)
	}
	if sn.Version != snapshotVersion {
		return nil, fmt.Errorf("restore lease snapshot: version %d, want %d", sn.Version, snapshotVersion)
	}
	if sn.Gen+1 >= 1<<(64-seqBits) {
		return nil, fmt.Errorf("restore lease snapshot: generation %d exhausted", sn.Gen)
	}
	s := New(sn.Options)
	s.gen, s.seq = sn.Gen+1, 0
	s.now = sn.Now
	if now.After(s.now) {
		s.now = now
	}
	s.discards = sn.Discards
	if policy == KeepLeases {
		for _, sw := range sn.Workers {
			if sw.Slots < 1 || s.workers[sw.ID] != nil {
				return nil, fmt.Errorf("restore lease snapshot: bad worker %q", sw.ID)
			}
			w := &worker{id: sw.ID, slots: sw.Slots, deadline: s.now.Add(s.opts.LeaseTTL)}
			s.workers[w.id] = w
			heap.Push(&s.wheap, w)
		}
	}
	for _, sr := range sn.Runs {
		if s.runs[sr.ID] != nil {
			return nil, fmt.Errorf("restore lease snapshot: run %q twice", sr.ID)
		}
		r := &run{id: sr.ID, retries: sr.Retries, err: sr.Error, parts: make([]part, len(sr.Partitions)), index: make(map[PartitionID]int32, len(sr.Partitions))}
		for _, d := range sr.Durations {
			r.med.Add(time.Duration(d))
		}
		for i, sp := range sr.Partitions {
			if _, dup := r.index[sp.ID]; dup {
				return nil, fmt.Errorf("restore lease snapshot: run %q: partition %q twice", sr.ID, sp.ID)
			}
			r.index[sp.ID] = int32(i)
			p := part{id: sp.ID, state: sp.State, attempts: sp.Attempts, failures: sp.Failures, copied: sp.Copied, excluded: sp.Excluded}
			if sp.Accepted != nil {
				a := sp.Accepted
				p.accepted = &leaseRec{Lease: a.Lease, state: leaseAccepted, run: r, part: int32(i), finished: a.Finished, result: a.Result}
				s.leases[a.Token] = p.accepted
				r.tokens = append(r.tokens, a.Token)
			}
			if (p.state == Done) != (p.accepted != nil) {
				return nil, fmt.Errorf("restore lease snapshot: run %q: partition %q is %s with accepted=%v", sr.ID, sp.ID, p.state, p.accepted != nil)
			}
			r.parts[i] = p
			switch p.state {
			case Pending:
				r.pending++
			case Leased:
				r.leased++
			case Done:
				r.done++
			case Failed:
				r.failed++
			}
		}
		s.runs[r.id] = r
		s.order = append(s.order, r)
	}
	// Leases, in token (= grant) order.
	for _, ls := range sn.Leases {
		r := s.runs[ls.Run]
		if r == nil {
			return nil, fmt.Errorf("restore lease snapshot: lease %s of unknown run %q", ls.Token, ls.Run)
		}
		idx, ok := r.index[ls.Partition]
		if !ok || r.parts[idx].state != Leased {
			return nil, fmt.Errorf("restore lease snapshot: lease %s of partition %q not leased", ls.Token, ls.Partition)
		}
		l := &leaseRec{Lease: ls, run: r, part: idx}
		w := s.workers[ls.Worker]
		if policy == DropLeases || w == nil {
			l.state = leaseRevoked
			s.leases[l.Token] = l
			r.tokens = append(r.tokens, l.Token)
			s.discards = append(s.discards, Discard{Lease: ls, Reason: ReasonRevoked, Running: true})
			continue
		}
		s.attach(l, w)
		l.Expires = w.deadline
		if !ls.Speculative && s.opts.Speculative {
			r.running.PushBack(l)
		}
	}
	// Leased partitions left without a lease go back to pending, at the
	// front, uncharged; then the saved pending order.
	for _, r := range s.order {
		for i := range r.parts {
			p := &r.parts[i]
			if p.state == Leased && len(p.active) == 0 {
				p.state = Pending
				r.leased--
				r.pending++
				if r.err == "" {
					p.queued = true
					s.pending.PushBack(entry{r, int32(i)})
				}
			}
		}
	}
	for k, r := range s.order {
		sr := sn.Runs[k]
		for _, i := range sr.Pending {
			if int(i) < 0 || int(i) >= len(r.parts) {
				return nil, fmt.Errorf("restore lease snapshot: run %q: bad pending index %d", r.id, i)
			}
			p := &r.parts[i]
			if p.state == Pending && !p.queued && r.err == "" {
				p.queued = true
				s.pending.PushBack(entry{r, i})
			}
		}
		for i := range r.parts { // pending but missing from the saved order
			p := &r.parts[i]
			if p.state == Pending && !p.queued && r.err == "" {
				p.queued = true
				s.pending.PushBack(entry{r, int32(i)})
			}
		}
		for _, t := range sr.Copies {
			if l := s.leases[t]; l != nil && l.state == leaseActive {
				s.spec.PushBack(l)
			}
		}
	}
	return s, nil
}
