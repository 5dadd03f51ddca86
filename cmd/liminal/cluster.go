package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/liminal-data/liminal/api"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/coordinator/cluster"
	"github.com/liminal-data/liminal/coordinator/lease"
	"github.com/liminal-data/liminal/coordinator/worker"
	"github.com/liminal-data/liminal/engine"
	"github.com/liminal-data/liminal/metrics"
	"github.com/liminal-data/liminal/spec"
)

// clusterService is the gRPC side of `liminal coordinator --listen`.
type clusterService struct {
	srv     *cluster.Server
	journal *cluster.Journal
	gs      *grpc.Server
	ln      net.Listener
	tmp     string
	log     *slog.Logger
}

func startCluster(f coordinatorFlags, log *slog.Logger, m *metrics.Metrics) (*clusterService, error) {
	if _, _, err := net.SplitHostPort(f.grpcListen); err != nil {
		return nil, exit(exitInvalid, fmt.Errorf("--listen %q: want host:port", f.grpcListen))
	}
	if f.leaseTTL < 500*time.Millisecond {
		return nil, exit(exitInvalid, errors.New("--lease-ttl must be at least 500ms"))
	}
	tok, err := apiToken(f)
	if err != nil {
		return nil, exit(exitInvalid, err)
	}
	opts, err := cluster.ServerOptions(tok, f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, exit(exitInvalid, err)
	}
	c := &clusterService{log: log}
	dir := f.state
	if dir == "" {
		if c.tmp, err = os.MkdirTemp("", "liminal-coordinator-"); err != nil {
			return nil, exit(exitFailed, err)
		}
		dir = c.tmp
		log.Warn("no --state: a restarted coordinator cannot resume its runs")
	}
	if c.journal, err = cluster.OpenJournal(filepath.Join(dir, "cluster")); err != nil {
		c.close()
		return nil, exit(exitFailed, err)
	}
	c.srv, err = cluster.NewServer(cluster.Config{Journal: c.journal, Logger: log,
		Lease:   lease.Options{LeaseTTL: f.leaseTTL, MaxAttemptsPerPartition: f.maxAttempts + 1, Speculative: f.speculative},
		Workers: func(n, _ int) { m.SetClusterWorkers(n) }})
	if err != nil {
		c.close()
		return nil, exit(exitFailed, err)
	}
	if c.ln, err = net.Listen("tcp", f.grpcListen); err != nil {
		c.close()
		return nil, exit(exitFailed, fmt.Errorf("listen: %w", err))
	}
	c.gs = grpc.NewServer(opts...)
	c.srv.Register(c.gs)
	log.Info("cluster listening", "addr", c.ln.Addr().String(), "generation", c.journal.Generation(),
		"lease_ttl", f.leaseTTL.String(), "tls", f.tlsCert != "")
	return c, nil
}

// serve starts answering gRPC calls; runs submitted over gRPC go to h.
func (c *clusterService) serve(h http.Handler, token string) {
	c.srv.ServeRuns(h, token)
	go func() {
		if err := c.gs.Serve(c.ln); err != nil {
			c.log.Error("gRPC serve", "error", err)
		}
	}()
}

// stop ends the gRPC service (after the runs).
func (c *clusterService) stop() {
	if c.gs == nil {
		return
	}
	done := make(chan struct{})
	go func() { c.gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.gs.Stop()
	}
	c.gs = nil
}

func (c *clusterService) close() {
	c.stop()
	if c.srv != nil {
		c.srv.Close()
	}
	if c.journal != nil {
		_ = c.journal.Close()
	}
	if c.tmp != "" {
		_ = os.RemoveAll(c.tmp)
	}
}

type workerFlags struct {
	coordinator string
	slots       int
	http        string
	id          string
	tokenFile   string
	tlsCA       string
	tls         bool
	memoryLimit string
	workDir     string
}

func newWorkerCmd(g *globals) *cobra.Command {
	var f workerFlags
	cmd := &cobra.Command{
		Use:   "worker --coordinator ADDR",
		Short: "Run partitions leased from a cluster coordinator",
		Long: `Run a worker process of a cluster: it registers with the coordinator
('liminal coordinator --listen ADDR'), leases partitions for its --slots, runs
them on its own embedded DuckDB engine and reports their staged output. It
heartbeats its leases; if it dies, its leases expire and its partitions run
elsewhere. It reconnects on its own when the coordinator restarts. On SIGINT
or SIGTERM it deregisters, so that its partitions are handed out again at once.

The worker reads the run's spec, SQL files, models and inputs, and writes sink
staging, at the paths the spec names: they must be on storage every worker and
the coordinator see alike. Secrets (secret_env, secret_file) are read here.

Authentication: the token of --token-file, else $LIMINAL_TOKEN.
--http ADDR serves /healthz (alive) and /readyz (registered with a coordinator).`,
		Example: `  LIMINAL_TOKEN=$(cat token) liminal worker --coordinator 10.0.0.5:7070 --slots 4 --http :8090`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.worker(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.coordinator, "coordinator", "", "host:port of the coordinator's gRPC service (required)")
	fl.IntVar(&f.slots, "slots", defaultWorkers(), "partitions this worker runs at once")
	fl.StringVar(&f.http, "http", "", "host:port for /healthz and /readyz (default: none)")
	fl.StringVar(&f.id, "id", "", "worker id, unique in the cluster (default: host name, pid and a random suffix)")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the cluster token (default: $LIMINAL_TOKEN)")
	fl.StringVar(&f.tlsCA, "tls-ca", "", "PEM certificate(s) to trust for the coordinator's TLS (turns TLS on)")
	fl.BoolVar(&f.tls, "tls", false, "use TLS with the system's trusted roots")
	fl.StringVar(&f.memoryLimit, "memory-limit", "", "DuckDB memory limit of this worker, e.g. 4GB (default: 80% of RAM)")
	fl.StringVar(&f.workDir, "work-dir", "", "where DuckDB spills (default: the OS temp directory)")
	return cmd
}

func clusterToken(file string) (string, error) {
	return apiToken(coordinatorFlags{tokenFile: file})
}

func (g *globals) worker(ctx context.Context, f workerFlags) error {
	if f.coordinator == "" {
		return exit(exitInvalid, errors.New("--coordinator is required"))
	}
	if f.slots < 1 {
		return exit(exitInvalid, errors.New("--slots must be at least 1"))
	}
	log, err := g.logger(false)
	if err != nil {
		return err
	}
	tok, err := clusterToken(f.tokenFile)
	if err != nil {
		return exit(exitInvalid, err)
	}
	if f.id == "" {
		host, _ := os.Hostname()
		f.id = fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), time.Now().UnixNano()&0xffff)
	}
	eng, err := engine.New(engine.Options{Slots: f.slots, MemoryLimit: f.memoryLimit, TempDir: f.workDir})
	if err != nil {
		return exit(exitFailed, err)
	}
	defer eng.Close()
	wk := worker.New(eng)
	defer wk.Close()
	var ready atomic.Bool
	if f.http != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !ready.Load() {
				http.Error(w, "not registered with a coordinator", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ready\n"))
		})
		ln, err := net.Listen("tcp", f.http)
		if err != nil {
			return exit(exitFailed, fmt.Errorf("--http: %w", err))
		}
		hs := newHTTPServer(mux)
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
	}
	log.Info("worker starting", "id", f.id, "coordinator", f.coordinator, "slots", f.slots)
	err = cluster.RunWorker(ctx, cluster.WorkerConfig{
		Dial: cluster.DialConfig{Addr: f.coordinator, Token: tok, CAFile: f.tlsCA, TLS: f.tls},
		ID:   f.id, Slots: f.slots, Exec: wk, Logger: log, Version: version, Ready: ready.Store})
	if err != nil {
		return exit(exitFailed, err)
	}
	log.Info("worker stopped")
	return nil
}

// remoteRun submits a run to a cluster coordinator and follows it to the
// end with the same progress, result and exit code as a local run.
// raw is the spec's text; nil reads it from path.
func (g *globals) remoteRun(ctx context.Context, f runFlags, path string, raw []byte, pipeline string) error {
	switch {
	case f.task != "" || f.skipIfCommitted:
		return exit(exitInvalid, errors.New("--task and --skip-if-committed run locally only (not with --coordinator)"))
	case f.maxPartitions != 0:
		return exit(exitInvalid, errors.New("--max-partitions is not supported with --coordinator"))
	}
	var err error
	if raw == nil {
		if raw, err = os.ReadFile(path); err != nil {
			return g.failEarly(f, nil, exit(exitInvalid, err))
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return g.failEarly(f, nil, exit(exitInvalid, err))
	}
	env := map[string]string{}
	s, err := spec.ParseWithEnv(raw, path, coordinator.RecordingLookup(env))
	if err != nil {
		return g.failEarly(f, nil, exit(exitInvalid, err))
	}
	p, err := s.Pipeline(pipeline)
	if err != nil {
		return g.failEarly(f, nil, exit(exitInvalid, err))
	}
	f.pipelineSpec = p
	tty := g.isTTY()
	log, err := g.logger(tty)
	if err != nil {
		return err
	}
	tok, err := clusterToken(f.tokenFile)
	if err != nil {
		return exit(exitInvalid, err)
	}
	cc, err := cluster.Dial(cluster.DialConfig{Addr: f.coordinator, Token: tok, CAFile: f.tlsCA})
	if err != nil {
		return exit(exitInvalid, err)
	}
	cl := cluster.NewClient(cc)
	defer cl.Close()
	body, _ := json.Marshal(map[string]any{"spec": string(raw), "spec_file": abs, "pipeline": p.Pipeline,
		"run_id": f.runID, "target_rows": f.targetRows, "env": env})
	var run api.Run
	if err := callRuns(ctx, cl, "POST", "/api/v1/runs", body, &run); err != nil {
		return g.failEarly(f, p, err)
	}
	log.Info("run submitted", "run_id", run.ID, "coordinator", f.coordinator)
	progress := coordinator.NewProgress(g.stderr, tty, log, 5*time.Second)
	defer progress.Stop()
	fol := follower{p: progress, started: map[string]bool{}, done: map[string]bool{}}
	cancelled := false
	for {
		fol.update(&run)
		if run.Result != nil {
			break
		}
		if ctx.Err() != nil {
			if !cancelled {
				cancelled = true
				log.Warn("cancelling the run on the coordinator", "run_id", run.ID)
				cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				var r api.Run
				_ = callRuns(cctx, cl, "POST", "/api/v1/runs/"+run.ID+"/cancel", nil, &r)
				cancel()
			}
			ctx = context.Background()
		}
		// A long poll: the answer comes when the run ends, or after half a
		// second with its progress.
		var next api.Run
		if err := callRuns(ctx, cl, "GET", "/api/v1/runs/"+run.ID+"?wait=500ms", nil, &next); err != nil {
			if ctx.Err() != nil {
				continue
			}
			var ee *exitError
			if errors.As(err, &ee) && ee.code == exitInvalid {
				return g.failEarly(f, p, err)
			}
			log.Warn("coordinator unreachable; still following the run", "run_id", run.ID, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		run = next
	}
	progress.Stop()
	res := run.Result
	if path != sqlSpecName {
		res.Spec = path
	} else {
		res.Spec = ""
	}
	if res.Tasks == nil {
		res.Tasks = []coordinator.TaskResult{}
	}
	return g.report(f, res, log)
}

// callRuns calls the coordinator's run service; an API error becomes an
// exit error (2 for an invalid spec or request).
func callRuns(ctx context.Context, cl *cluster.Client, method, path string, body []byte, out any) error {
	resp, err := cl.Runs(ctx, &cluster.RunRequest{Method: method, Path: path, Body: body})
	if err != nil {
		st := status.Convert(err)
		code := exitFailed
		if st.Code() == codes.Unauthenticated || st.Code() == codes.InvalidArgument {
			code = exitInvalid
		}
		return exit(code, fmt.Errorf("coordinator: %s", st.Message()))
	}
	if resp.Status >= 300 {
		var e struct {
			Error struct {
				Code    string   `json:"code"`
				Message string   `json:"message"`
				Details []string `json:"details"`
			} `json:"error"`
		}
		_ = json.Unmarshal(resp.Body, &e)
		msg := e.Error.Message
		for _, d := range e.Error.Details {
			msg += "\n  " + d
		}
		code := exitFailed
		if resp.Status == http.StatusBadRequest || resp.Status == http.StatusConflict || resp.Status == http.StatusUnauthorized {
			code = exitInvalid
		}
		return exit(code, fmt.Errorf("coordinator: %s", msg))
	}
	return json.Unmarshal(resp.Body, out)
}

// follower turns successive snapshots of a remote run into progress events.
type follower struct {
	p       *coordinator.Reporter
	started map[string]bool
	done    map[string]bool
	parts   map[string]bool
}

func (fo *follower) update(r *api.Run) {
	if fo.parts == nil {
		fo.parts = map[string]bool{}
	}
	for _, t := range r.Tasks {
		if !fo.started[t.Task] && t.PartitionsTotal > 0 {
			fo.started[t.Task] = true
			fo.p.TaskStarted(t.Task, t.PartitionsTotal, t.RowsTotal)
		}
		for _, pp := range t.Partitions {
			k := t.Task + "\x00" + pp.ID
			if pp.Status == coordinator.StatusSucceeded && !fo.parts[k] && pp.ID != "final" {
				fo.parts[k] = true
				fo.p.PartitionDone(t.Task, pp.RowsIn, pp.RowsOut)
			}
		}
	}
	if r.Result != nil {
		for _, tr := range r.Result.Tasks {
			if !fo.done[tr.Task] {
				fo.done[tr.Task] = true
				fo.p.TaskDone(tr.Task, tr)
			}
		}
	}
}

// sqlSpecName names the spec `liminal sql --coordinator` submits.
const sqlSpecName = "sql.yml"

// sqlSpec writes an ad-hoc `liminal sql` job as the equivalent spec (JSON,
// which YAML reads), so that worker processes rebuild it like any other.
func sqlSpec(query string, sources []string, formats map[string]string, sink, format, mode string, partitionBy []string,
	compression, partitionSource string, targetRows int64) ([]byte, error) {
	srcs := map[string]any{}
	var names []string
	for _, s := range sources {
		name, uri, ok := strings.Cut(s, "=")
		if !ok || name == "" || uri == "" {
			return nil, fmt.Errorf("--source %q: want NAME=URI", s)
		}
		if _, dup := srcs[name]; dup {
			return nil, fmt.Errorf("--source %s given twice", name)
		}
		src := map[string]any{"uri": uri}
		if f := formats[name]; f != "" {
			src["format"] = f
		}
		srcs[name] = src
		names = append(names, name)
	}
	sk := map[string]any{"uri": sink, "mode": mode}
	if format != "" {
		sk["format"] = format
	}
	if len(partitionBy) > 0 {
		sk["partition_by"] = partitionBy
	}
	if compression != "" {
		sk["compression"] = compression
	}
	task := map[string]any{"task": "query", "type": "sql", "sql": query, "sources": names, "sink": "sink"}
	part := map[string]any{}
	if partitionSource != "" {
		part["source"] = partitionSource
	}
	if targetRows > 0 {
		part["target_rows"] = targetRows
	}
	if len(part) > 0 {
		task["partition"] = part
	}
	return json.MarshalIndent(map[string]any{"name": "sql", "sources": srcs, "sinks": map[string]any{"sink": sk},
		"pipelines": []any{map[string]any{"pipeline": "sql", "tasks": []any{task}}}}, "", "  ")
}
