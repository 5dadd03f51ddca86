package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/coordinator"
)

// Runner is a worker process's executor (coordinator/worker on an engine).
type Runner interface {
	coordinator.Executor
	ExportPartial(ctx context.Context, name string, out io.Writer) error
}

// WorkerConfig configures RunWorker.
type WorkerConfig struct {
	Dial DialConfig
	// ID names this worker process; it must be unique in the cluster
	// (default: random).
	ID      string
	Slots   int
	Exec    Runner
	Logger  *slog.Logger
	Version string
	// Ready is told whether the worker is registered with a coordinator
	// (readiness).
	Ready func(bool)
	// Resolve rebuilds a run's tasks from its recipe (default:
	// Recipe.Resolve).
	Resolve func(ctx context.Context, r *coordinator.Recipe, runID string) ([]*coordinator.Task, error)
}

// RunWorker registers with the coordinator and runs the attempts it
// leases until ctx ends; then it deregisters, so that its leases go back
// to the queue at once. It reconnects on its own when the coordinator is
// unreachable or restarts; it returns an error only for a refused token
// or a bad configuration.
func RunWorker(ctx context.Context, cfg WorkerConfig) error {
	if cfg.Slots < 1 || cfg.Exec == nil {
		return errors.New("worker: Slots and Exec are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ID == "" {
		cfg.ID = fmt.Sprintf("worker-%08x", rand.Uint32())
	}
	if cfg.Ready == nil {
		cfg.Ready = func(bool) {}
	}
	if cfg.Resolve == nil {
		cfg.Resolve = func(ctx context.Context, r *coordinator.Recipe, runID string) ([]*coordinator.Task, error) {
			return r.Resolve(ctx, runID)
		}
	}
	cc, err := Dial(cfg.Dial)
	if err != nil {
		return err
	}
	w := &workerLoop{cfg: cfg, cl: NewClient(cc), log: cfg.Logger.With("worker", cfg.ID), tasks: map[string]*recipeTasks{}}
	defer cc.Close()
	return w.run(ctx)
}

type workerLoop struct {
	cfg WorkerConfig
	cl  *Client
	log *slog.Logger

	mu       sync.Mutex
	inflight map[uint64]context.CancelFunc
	tasks    map[string]*recipeTasks
	order    []string
}

// recipeTasks are the tasks of one run as this worker rebuilt them.
type recipeTasks struct {
	once    sync.Once
	err     error
	tasks   map[string]*coordinator.Task
	planned map[string]*sync.Once
	planErr map[string]error
	mu      sync.Mutex
}

func (w *workerLoop) run(ctx context.Context) error {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		reg, err := w.cl.Register(ctx, &RegisterRequest{Worker: w.cfg.ID, Slots: w.cfg.Slots, Version: w.cfg.Version})
		if err != nil {
			if status.Code(err) == codes.Unauthenticated || status.Code(err) == codes.InvalidArgument {
				return fmt.Errorf("register with the coordinator: %s", status.Convert(err).Message())
			}
			if ctx.Err() != nil {
				break
			}
			w.log.Warn("coordinator unreachable; retrying", "error", status.Convert(err).Message(), "in", backoff.String())
			sleep(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		w.log.Info("registered", "slots", w.cfg.Slots)
		w.cfg.Ready(true)
		w.session(ctx, reg)
		w.cfg.Ready(false)
	}
	dctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := w.cl.Deregister(dctx, &DeregisterRequest{Worker: w.cfg.ID}); err == nil {
		w.log.Info("deregistered")
	}
	return nil
}

// session runs attempts until the coordinator forgets this worker (it
// expired, or the coordinator restarted) or ctx ends.
func (w *workerLoop) session(ctx context.Context, reg *RegisterResponse) {
	sctx, end := context.WithCancel(ctx)
	defer end()
	w.mu.Lock()
	w.inflight = map[uint64]context.CancelFunc{}
	w.mu.Unlock()
	var wg sync.WaitGroup
	free := make(chan struct{}, w.cfg.Slots)
	for range w.cfg.Slots {
		free <- struct{}{}
	}
	hb := time.Duration(reg.HeartbeatMS) * time.Millisecond
	ttl := time.Duration(reg.LeaseTTLMS) * time.Millisecond
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.heartbeats(sctx, end, max(hb, 100*time.Millisecond), ttl)
	}()
	for sctx.Err() == nil {
		// Wait for a free slot, then ask for as many leases as slots are free.
		select {
		case <-free:
		case <-sctx.Done():
		}
		if sctx.Err() != nil {
			break
		}
		free <- struct{}{}
		resp, err := w.cl.Acquire(sctx, &AcquireRequest{Worker: w.cfg.ID, WaitMS: 10_000})
		if err != nil {
			if status.Code(err) == codes.NotFound {
				w.log.Warn("the coordinator does not know this worker (expired or restarted); registering again")
				end()
				break
			}
			if sctx.Err() == nil {
				sleep(sctx, 500*time.Millisecond)
			}
			continue
		}
		for _, a := range resp.Assignments {
			<-free
			actx, cancel := context.WithCancel(sctx)
			w.mu.Lock()
			w.inflight[a.Token] = cancel
			w.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { free <- struct{}{} }()
				defer func() {
					w.mu.Lock()
					delete(w.inflight, a.Token)
					w.mu.Unlock()
					cancel()
				}()
				w.attempt(actx, a)
			}()
		}
	}
	end()
	wg.Wait()
}

func (w *workerLoop) heartbeats(ctx context.Context, end context.CancelFunc, every, ttl time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		toks := make([]uint64, 0, len(w.inflight))
		for tok := range w.inflight {
			toks = append(toks, tok)
		}
		w.mu.Unlock()
		hctx, cancel := context.WithTimeout(ctx, every*2)
		resp, err := w.cl.Heartbeat(hctx, &HeartbeatRequest{Worker: w.cfg.ID, Tokens: toks})
		cancel()
		switch {
		case err == nil:
			last = time.Now()
			for _, tok := range resp.Cancel {
				w.mu.Lock()
				c := w.inflight[tok]
				w.mu.Unlock()
				if c != nil {
					w.log.Info("coordinator took the lease back; cancelling the attempt", "token", tokenString(tok))
					c()
				}
			}
		case status.Code(err) == codes.NotFound:
			w.log.Warn("the coordinator does not know this worker (expired or restarted); registering again")
			end()
			return
		case ttl > 0 && time.Since(last) > ttl:
			// Our leases have expired over there: whatever we finish now
			// will be refused. Start over.
			w.log.Warn("no heartbeat got through for a lease TTL; registering again", "error", status.Convert(err).Message())
			end()
			return
		}
	}
}

func tokenString(t uint64) string { return fmt.Sprintf("%d.%d", t>>40, t&(1<<40-1)) }

// attempt runs one lease and reports its end.
func (w *workerLoop) attempt(ctx context.Context, a Assignment) {
	log := w.log.With("run_id", a.RunID, "task", a.Task, "partition", a.Split.ID, "token", tokenString(a.Token))
	start := time.Now()
	log.Info("attempt started", "attempt", a.Attempt)
	res, partial, err := w.execute(ctx, a)
	if ctx.Err() != nil {
		log.Info("attempt cancelled")
		return
	}
	if err != nil {
		log.Warn("attempt failed", "error", err)
		w.report(ctx, log, func(c context.Context) error {
			return w.cl.Fail(c, &FailRequest{Worker: w.cfg.ID, Token: a.Token, Error: err.Error(),
				Permanent: errors.Is(err, connectors.ErrPermanent), Invalid: coordinator.IsInvalid(err)})
		})
		return
	}
	rj, _ := json.Marshal(res)
	var resp *CompleteResponse
	w.report(ctx, log, func(c context.Context) error {
		var err error
		resp, err = w.cl.Complete(c, &CompleteRequest{Worker: w.cfg.ID, Token: a.Token, Result: rj, Partial: partial})
		return err
	})
	switch {
	case resp == nil:
	case resp.Accepted:
		log.Info("attempt accepted", "rows_out", res.RowsOut, "ms", time.Since(start).Milliseconds())
	default:
		log.Info("attempt not accepted; its staged output is discarded", "reason", resp.Reason)
	}
}

// report retries a report while the coordinator is unreachable (e.g.
// restarting), for as long as the session lasts.
func (w *workerLoop) report(ctx context.Context, log *slog.Logger, f func(context.Context) error) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := f(c)
		cancel()
		if err == nil {
			return
		}
		if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
			log.Warn("report to the coordinator", "error", status.Convert(err).Message())
			return
		}
		sleep(ctx, backoff)
		backoff = min(backoff*2, 2*time.Second)
	}
}

// execute rebuilds the task and runs the attempt; a partial result leaves
// the engine as an Arrow IPC stream.
func (w *workerLoop) execute(ctx context.Context, a Assignment) (coordinator.AttemptResult, []byte, error) {
	t, err := w.task(ctx, a)
	if err != nil {
		return coordinator.AttemptResult{}, nil, err
	}
	var plan coordinator.TaskPlan
	if err := json.Unmarshal(a.Plan, &plan); err != nil {
		return coordinator.AttemptResult{}, nil, permanent(fmt.Errorf("decode plan: %w", err))
	}
	res, err := w.cfg.Exec.Run(ctx, coordinator.Attempt{RunID: a.RunID, Task: t, Plan: &plan, Stage: 1,
		Split: a.Split, Number: int(a.Token)})
	if err != nil || res.Partial == "" {
		return res, nil, err
	}
	defer func() { _ = w.cfg.Exec.Release(context.WithoutCancel(ctx), []string{res.Partial}) }()
	var buf bytes.Buffer
	if err := w.cfg.Exec.ExportPartial(ctx, res.Partial, &buf); err != nil {
		return res, nil, err
	}
	res.Partial = "ipc"
	return res, buf.Bytes(), nil
}

// task rebuilds (once per run and recipe) the task an assignment names.
func (w *workerLoop) task(ctx context.Context, a Assignment) (*coordinator.Task, error) {
	h := sha256.Sum256(a.Recipe)
	key := a.RunID + "\x00" + string(h[:])
	w.mu.Lock()
	rt := w.tasks[key]
	if rt == nil {
		rt = &recipeTasks{planned: map[string]*sync.Once{}, planErr: map[string]error{}}
		w.tasks[key] = rt
		w.order = append(w.order, key)
		if len(w.order) > 16 { // keep the runs of the last while
			delete(w.tasks, w.order[0])
			w.order = w.order[1:]
		}
	}
	w.mu.Unlock()
	rt.once.Do(func() {
		var r coordinator.Recipe
		if err := json.Unmarshal(a.Recipe, &r); err != nil {
			rt.err = permanent(fmt.Errorf("decode recipe: %w", err))
			return
		}
		tasks, err := w.cfg.Resolve(context.WithoutCancel(ctx), &r, a.RunID)
		if err != nil {
			rt.err = err
			return
		}
		rt.tasks = map[string]*coordinator.Task{}
		for _, t := range tasks {
			rt.tasks[t.Name] = t
		}
	})
	if rt.err != nil {
		return nil, rt.err
	}
	name, _, _ := cutLast(a.Task, "/")
	t := rt.tasks[name]
	if t == nil {
		return nil, permanent(fmt.Errorf("task %q is not in the run's spec", name))
	}
	rt.mu.Lock()
	once := rt.planned[name]
	if once == nil {
		once = &sync.Once{}
		rt.planned[name] = once
	}
	rt.mu.Unlock()
	once.Do(func() {
		// The task's inputs from earlier tasks exist now; a scoring task
		// loads its model while planning.
		for n, src := range t.Sources {
			if l, ok := src.(*coordinator.LazySource); ok {
				real, err := l.Open(ctx)
				if err != nil {
					rt.mu.Lock()
					rt.planErr[name] = fmt.Errorf("read the result of task %s: %w", l.Task, err)
					rt.mu.Unlock()
					return
				}
				t.Sources[n] = real
			}
		}
		if t.Score != nil {
			if _, err := w.cfg.Exec.Plan(ctx, t); err != nil {
				rt.mu.Lock()
				rt.planErr[name] = err
				rt.mu.Unlock()
			}
		}
	})
	rt.mu.Lock()
	err := rt.planErr[name]
	rt.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return t, nil
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
