package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/coordinator/lease"
	"github.com/liminal-data/liminal/partition"
)

// Config configures a Server.
type Config struct {
	// Lease are the scheduling rules (TTL, attempt limits, speculation).
	Lease lease.Options
	// Journal keeps accepted attempts across restarts (required).
	Journal *Journal
	Logger  *slog.Logger
	// Runs serves RunRequests: the coordinator's REST API handler; nil
	// refuses them. RunsToken is sent to it as the bearer token.
	Runs      http.Handler
	RunsToken string
	// Workers, when set, is told the number of registered workers and
	// their slots whenever it changes (metrics).
	Workers func(workers, slots int)
	// Tick is how often leases are checked for expiry (default 500ms).
	Tick time.Duration
}

// Server is the coordinator's side of the cluster: the gRPC service the
// workers and clients call, and the lease scheduler behind it. Build it
// with NewServer, register it on a grpc.Server with Register, and stop it
// with Close.
type Server struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	sched   *lease.Scheduler
	keys    map[string]*keyState
	tokens  map[lease.Token]tokenInfo
	workers map[lease.WorkerID]int
	wake    chan struct{}

	stop chan struct{}
	done chan struct{}
}

// keyState is one task stage of one run as handed to the scheduler (a
// lease "run"): its partitions, the callers waiting for them, and what
// workers need to run them.
type keyState struct {
	lkey, runID, key string
	refs             int
	recipe, plan     json.RawMessage
	splits           map[lease.PartitionID]partition.Split
	waiters          map[lease.PartitionID][]chan outcome
	decided          map[lease.PartitionID]outcome
	lastErr          map[lease.PartitionID]failure
	failed           *outcome
	// journaled are the partitions accepted before this stage was handed
	// to the scheduler (by an earlier incarnation): read from the journal.
	journaled map[string]bool
}

type failure struct {
	msg                string
	permanent, invalid bool
}

type outcome struct {
	acc *Accepted
	err error
}

type tokenInfo struct {
	ks     *keyState
	part   lease.PartitionID
	worker lease.WorkerID
}

// NewServer starts the scheduler of a new coordinator incarnation.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Journal == nil {
		return nil, errors.New("cluster: Config.Journal is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 500 * time.Millisecond
	}
	sched, err := lease.NewGeneration(cfg.Lease, cfg.Journal.Generation())
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, sched: sched, keys: map[string]*keyState{},
		tokens: map[lease.Token]tokenInfo{}, workers: map[lease.WorkerID]int{}, wake: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	go s.ticker()
	return s, nil
}

// Close stops the expiry ticker. Waiting executors return when their
// contexts end.
func (s *Server) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
		<-s.done
	}
}

func (s *Server) ticker() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.mu.Lock()
			s.sched.Tick(now)
			s.settleLocked()
			s.mu.Unlock()
		}
	}
}

// wakeLocked wakes the workers waiting in Acquire.
func (s *Server) wakeLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// settleLocked acts on the scheduler's decisions: discarded attempts are
// forgotten (and re-queued partitions offered to waiting workers), failed
// task stages fail their waiting callers.
func (s *Server) settleLocked() {
	ds := s.sched.TakeDiscards()
	for _, d := range ds {
		tok := d.Lease.Token
		if ti, ok := s.tokens[tok]; ok {
			delete(s.tokens, tok)
			s.log.Info("attempt discarded", "run_id", ti.ks.runID, "task", ti.ks.key, "partition", string(ti.part),
				"worker", string(ti.worker), "token", tok.String(), "reason", string(d.Reason))
		}
	}
	for _, ks := range s.keys {
		if ks.failed != nil {
			continue
		}
		if failed, msg := s.sched.Failed(ks.lkey); failed {
			var f failure
			for _, e := range ks.lastErr {
				if e.msg != "" && (f.msg == "" || e.permanent) {
					f = e
				}
			}
			err := errors.New(msg)
			if f.invalid {
				err = coordinator.Invalid(permanent(err))
			} else {
				err = permanent(err)
			}
			o := outcome{err: err}
			ks.failed = &o
			for pid, ws := range ks.waiters {
				for _, ch := range ws {
					ch <- o
				}
				delete(ks.waiters, pid)
			}
		}
	}
	if len(ds) > 0 {
		s.wakeLocked()
	}
	s.reportWorkersLocked()
}

func (s *Server) reportWorkersLocked() {
	if s.cfg.Workers == nil {
		return
	}
	slots := 0
	for _, n := range s.workers {
		slots += n
	}
	s.cfg.Workers(len(s.workers), slots)
}

// deliverLocked hands a partition's outcome to its waiting callers, or
// keeps it for a caller still to come.
func (ks *keyState) deliverLocked(pid lease.PartitionID, o outcome) {
	if ws := ks.waiters[pid]; len(ws) > 0 {
		for _, ch := range ws {
			ch <- o
		}
		delete(ks.waiters, pid)
		return
	}
	ks.decided[pid] = o
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { g.RegisterService(&serviceDesc, s) }

func (s *Server) register(_ context.Context, r *RegisterRequest) (*RegisterResponse, error) {
	if r.Worker == "" || r.Slots < 1 {
		return nil, status.Error(codes.InvalidArgument, "worker id and at least 1 slot are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sched.Register(lease.WorkerID(r.Worker), r.Slots, time.Now()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.workers[lease.WorkerID(r.Worker)] = r.Slots
	s.settleLocked()
	s.log.Info("worker registered", "worker", r.Worker, "slots", r.Slots, "version", r.Version)
	ttl := s.sched.Options().LeaseTTL
	return &RegisterResponse{HeartbeatMS: (ttl / 4).Milliseconds(), LeaseTTLMS: ttl.Milliseconds()}, nil
}

func (s *Server) deregister(_ context.Context, r *DeregisterRequest) (*Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sched.Deregister(lease.WorkerID(r.Worker), time.Now()); err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	delete(s.workers, lease.WorkerID(r.Worker))
	s.settleLocked()
	s.log.Info("worker left", "worker", r.Worker)
	return &Empty{}, nil
}

// unknownWorker tells a worker to register again.
func (s *Server) unknownWorkerLocked(id string) error {
	if _, ok := s.workers[lease.WorkerID(id)]; ok {
		delete(s.workers, lease.WorkerID(id))
		s.log.Warn("worker expired", "worker", id)
		s.reportWorkersLocked()
	}
	return status.Error(codes.NotFound, "unknown worker: register again")
}

const maxWait = 30 * time.Second

func (s *Server) acquire(ctx context.Context, r *AcquireRequest) (*AcquireResponse, error) {
	wait := min(time.Duration(r.WaitMS)*time.Millisecond, maxWait)
	deadline := time.Now().Add(wait)
	for {
		s.mu.Lock()
		ls, err := s.sched.Acquire(lease.WorkerID(r.Worker), time.Now())
		if err != nil {
			err = s.unknownWorkerLocked(r.Worker)
			s.mu.Unlock()
			return nil, err
		}
		resp := &AcquireResponse{}
		for _, l := range ls {
			ks := s.keys[l.Run]
			if ks == nil { // cannot happen: runs are forgotten with their key
				continue
			}
			s.tokens[l.Token] = tokenInfo{ks: ks, part: l.Partition, worker: l.Worker}
			resp.Assignments = append(resp.Assignments, Assignment{Token: uint64(l.Token), Attempt: l.Attempt,
				RunID: ks.runID, Task: ks.key, Split: ks.splits[l.Partition], Recipe: ks.recipe, Plan: ks.plan})
		}
		wake := s.wake
		s.mu.Unlock()
		left := time.Until(deadline)
		if len(resp.Assignments) > 0 || left <= 0 {
			return resp, nil
		}
		t := time.NewTimer(left)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &AcquireResponse{}, nil
		}
		t.Stop()
	}
}

func (s *Server) heartbeat(_ context.Context, r *HeartbeatRequest) (*HeartbeatResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := lease.WorkerID(r.Worker)
	if _, err := s.sched.Heartbeat(id, time.Now()); err != nil {
		return nil, s.unknownWorkerLocked(r.Worker)
	}
	active := map[uint64]bool{}
	for _, l := range s.sched.Leases(id) {
		active[uint64(l.Token)] = true
	}
	resp := &HeartbeatResponse{}
	for _, t := range r.Tokens {
		if !active[t] {
			resp.Cancel = append(resp.Cancel, t)
		}
	}
	return resp, nil
}

func (s *Server) complete(_ context.Context, r *CompleteRequest) (*CompleteResponse, error) {
	tok := lease.Token(r.Token)
	s.mu.Lock()
	ti, known := s.tokens[tok]
	s.mu.Unlock()
	var res coordinator.AttemptResult
	if err := json.Unmarshal(r.Result, &res); err != nil {
		return nil, status.Error(codes.InvalidArgument, "result: "+err.Error())
	}
	// The partial result is durable before the attempt can be accepted.
	var partial string
	if known && len(r.Partial) > 0 {
		p, err := s.cfg.Journal.WritePartial(ti.ks.runID, r.Token, r.Partial)
		if err != nil {
			return nil, status.Error(codes.Unavailable, "store partial result: "+err.Error())
		}
		partial = p
	}
	s.mu.Lock()
	ok, reason := s.sched.Complete(tok, lease.Result{Output: r.Result, RowsIn: res.RowsIn, RowsOut: res.RowsOut}, time.Now())
	if !ok {
		s.settleLocked()
		s.mu.Unlock()
		if partial != "" {
			_ = os.Remove(partial)
		}
		if reason == lease.ReasonDuplicate {
			return &CompleteResponse{Accepted: true, Reason: string(reason)}, nil
		}
		return &CompleteResponse{Reason: string(reason)}, nil
	}
	delete(s.tokens, tok)
	s.settleLocked()
	s.mu.Unlock()
	// Journaled before the worker hears it was accepted and before the
	// run's commit can include it; outside the lock, so that concurrent
	// completions share one transaction (bbolt's Batch). A coordinator that
	// dies in between runs the partition again after its restart.
	acc := Accepted{Token: r.Token, Result: r.Result, Partial: partial, At: time.Now().UTC()}
	jerr := s.cfg.Journal.Put(ti.ks.runID, ti.ks.key, string(ti.part), acc)
	s.mu.Lock()
	defer s.mu.Unlock()
	if jerr != nil {
		ti.ks.deliverLocked(ti.part, outcome{err: fmt.Errorf("journal the accepted attempt: %w", jerr)})
		return nil, status.Error(codes.Internal, "journal: "+jerr.Error())
	}
	ti.ks.deliverLocked(ti.part, outcome{acc: &acc})
	return &CompleteResponse{Accepted: true}, nil
}

func (s *Server) fail(_ context.Context, r *FailRequest) (*Empty, error) {
	tok := lease.Token(r.Token)
	s.mu.Lock()
	defer s.mu.Unlock()
	kind := lease.Transient
	if r.Permanent || r.Invalid {
		kind = lease.Permanent
	}
	if ti, ok := s.tokens[tok]; ok {
		ti.ks.lastErr[ti.part] = failure{msg: r.Error, permanent: kind == lease.Permanent, invalid: r.Invalid}
		delete(s.tokens, tok)
		s.log.Warn("attempt failed", "run_id", ti.ks.runID, "task", ti.ks.key, "partition", string(ti.part),
			"worker", r.Worker, "token", tok.String(), "permanent", kind == lease.Permanent, "error", r.Error)
	}
	s.sched.Fail(tok, kind, r.Error, time.Now())
	s.settleLocked()
	s.wakeLocked()
	return &Empty{}, nil
}

// runs bridges a RunRequest to the REST API handler.
func (s *Server) runs(ctx context.Context, r *RunRequest) (*RunResponse, error) {
	if s.cfg.Runs == nil {
		return nil, status.Error(codes.Unimplemented, "this coordinator has no run service")
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, "http://coordinator"+r.Path, bytes.NewReader(r.Body))
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	if s.cfg.RunsToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.RunsToken)
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	s.cfg.Runs.ServeHTTP(rec, req)
	return &RunResponse{Status: rec.status, Body: json.RawMessage(bytes.TrimSpace(rec.body.Bytes()))}, nil
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}

// waitFor registers a caller waiting for partition a.Split of a task
// stage, handing the stage to the scheduler first if it is not there.
func (s *Server) waitFor(a coordinator.Attempt, key string) (<-chan outcome, func(), error) {
	lkey := a.RunID + "/" + key
	pid := lease.PartitionID(a.Split.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	ks := s.keys[lkey]
	if ks == nil {
		done, err := s.cfg.Journal.Splits(a.RunID, key)
		if err != nil {
			return nil, nil, err
		}
		plan := *a.Plan
		plan.Splits = nil
		pj, err := json.Marshal(plan)
		if err != nil {
			return nil, nil, err
		}
		rj, err := json.Marshal(a.Task.Recipe)
		if err != nil {
			return nil, nil, err
		}
		ks = &keyState{lkey: lkey, runID: a.RunID, key: key, recipe: rj, plan: pj,
			splits: map[lease.PartitionID]partition.Split{}, waiters: map[lease.PartitionID][]chan outcome{},
			decided: map[lease.PartitionID]outcome{}, lastErr: map[lease.PartitionID]failure{}, journaled: done}
		var ids []lease.PartitionID
		for _, sp := range a.Plan.Splits {
			ks.splits[lease.PartitionID(sp.ID)] = sp
			if !done[sp.ID] {
				ids = append(ids, lease.PartitionID(sp.ID))
			}
		}
		if err := s.sched.AddRun(lkey, ids); err != nil {
			return nil, nil, err
		}
		s.keys[lkey] = ks
		s.wakeLocked()
	}
	if _, ok := ks.splits[pid]; !ok {
		return nil, nil, fmt.Errorf("partition %s is not in the task's plan", pid)
	}
	ks.refs++
	release := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		ks.refs--
		if ks.refs == 0 && s.keys[lkey] == ks {
			s.sched.Forget(lkey)
			delete(s.keys, lkey)
			s.settleLocked()
		}
	}
	ch := make(chan outcome, 1)
	switch o, ok := ks.decided[pid]; {
	case ok:
		ch <- o
	case ks.failed != nil:
		ch <- *ks.failed
	case ks.journaled[string(pid)]:
		acc, found, err := s.cfg.Journal.Get(a.RunID, key, string(pid))
		switch {
		case err != nil:
			ch <- outcome{err: err}
		case !found:
			ch <- outcome{err: fmt.Errorf("partition %s: journal entry vanished", pid)}
		default:
			ch <- outcome{acc: &acc}
		}
	default:
		ks.waiters[pid] = append(ks.waiters[pid], ch)
	}
	return ch, release, nil
}

// Status is the cluster as the coordinator sees it.
type Status struct {
	Generation uint32        `json:"generation"`
	Workers    []WorkerState `json:"workers"`
	Stages     int           `json:"stages"`
}

// WorkerState is one registered worker.
type WorkerState struct {
	ID     string `json:"id"`
	Slots  int    `json:"slots"`
	Leases int    `json:"leases"`
}

// Status reports the registered workers and their leases.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Generation: s.cfg.Journal.Generation(), Stages: len(s.keys), Workers: []WorkerState{}}
	for id, slots := range s.workers {
		st.Workers = append(st.Workers, WorkerState{ID: string(id), Slots: slots, Leases: len(s.sched.Leases(id))})
	}
	sort.Slice(st.Workers, func(i, j int) bool { return st.Workers[i].ID < st.Workers[j].ID })
	return st
}

// ServeRuns sets the handler of RunRequests (the REST API) and the token
// sent to it. Call it before serving gRPC.
func (s *Server) ServeRuns(h http.Handler, token string) {
	s.cfg.Runs, s.cfg.RunsToken = h, token
}
