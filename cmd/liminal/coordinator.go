package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/liminal-data/liminal/api"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/coordinator/worker"
	"github.com/liminal-data/liminal/engine"
	"github.com/liminal-data/liminal/metrics"
	"github.com/liminal-data/liminal/spec"
)

type coordinatorFlags struct {
	listen         string
	state          string
	maxRuns        int
	runWorkers     int
	specs          []string
	tokenFile      string
	insecureNoAuth bool
	grace          time.Duration
	maxAttempts    int
	workDir        string
	memoryLimit    string
	logLines       int
	// cluster
	grpcListen  string
	tlsCert     string
	tlsKey      string
	leaseTTL    time.Duration
	speculative bool
}

func newCoordinatorCmd(g *globals) *cobra.Command {
	var f coordinatorFlags
	cmd := &cobra.Command{
		Use:   "coordinator [--listen ADDR] --http ADDR",
		Short: "Serve the REST API and, with --listen, a cluster of worker processes",
		Long: `Run the coordinator: a REST API (JSON, under /api/v1) that runs submitted
pipeline runs, at most --workers at once (others wait in a queue). Without
--listen each run runs in-process with its own embedded DuckDB engine and
--run-workers worker slots.

With --listen ADDR the coordinator serves a cluster (gRPC on ADDR): worker
processes ('liminal worker --coordinator ADDR') register and lease the runs'
partitions; heartbeats extend leases, an expired lease (a dead, hung or
unreachable worker) is run again elsewhere, and exactly one attempt of each
partition is committed. Planning, final stages of two-stage plans, data checks
and commits stay on the coordinator. Clients submit with
'liminal run SPEC --coordinator ADDR'. With --state DIR the accepted attempts
are journaled (bbolt, DIR/cluster/cluster.db): a coordinator killed and
restarted resumes its runs without running those partitions again, and workers
reconnect on their own. File sinks, specs, SQL files and models must be on
storage every worker sees at the same path.

Endpoints (OpenAPI 3 document at /api/v1/openapi.json):
  POST /api/v1/runs                 {"spec": "<inline YAML>"} or {"spec_name": "<name: of a --spec>"},
                                    plus pipeline, run_id (idempotent), workers, target_rows → 202
  GET  /api/v1/runs                 ?pipeline=&status=&limit=, newest first
  GET  /api/v1/runs/ID              status, per-task and per-partition progress, the result when over
  POST /api/v1/runs/ID/cancel       cancel a queued or running run (409 when it is over)
  GET  /api/v1/runs/ID/logs         ?since=N: the run's log lines as JSON objects
  GET  /healthz, /readyz            liveness; readiness (503 while shutting down); no token needed
  GET  /metrics                     Prometheus metrics

Authentication: every endpoint but /healthz and /readyz needs
"Authorization: Bearer TOKEN", the token being the contents of --token-file or
else $LIMINAL_TOKEN. Without a token the coordinator refuses to start, unless
--insecure-no-auth is given (only for a listener nobody else can reach).

Relative paths of inline specs resolve against the coordinator's working
directory; --spec files are re-read at each submission.

With --state DIR every run is kept as DIR/runs/ID.json, so that a restarted
coordinator lists earlier runs; runs that were queued or running when it
stopped are marked failed ("coordinator restarted"), or resumed with --listen.

TLS: --tls-cert and --tls-key serve gRPC over TLS (workers and clients then
pass --tls-ca). The same token authenticates the REST API and gRPC.

On SIGINT or SIGTERM readiness turns 503, new runs are refused, queued runs are
cancelled, running runs get --grace to finish and are then cancelled (their
output is not committed), and the coordinator exits 0.`,
		Example: `  LIMINAL_TOKEN=$(cat token) liminal coordinator --http 127.0.0.1:8089 --state /var/lib/liminal \
      --spec etl.yml --workers 2
  curl -s -H "Authorization: Bearer $LIMINAL_TOKEN" localhost:8089/api/v1/runs \
      -d '{"spec_name": "etl", "pipeline": "nightly"}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.coordinator(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "http", "127.0.0.1:8089", "host:port the API listens on")
	fl.StringVar(&f.state, "state", "", "directory keeping run state across restarts (default: memory only)")
	fl.IntVar(&f.maxRuns, "workers", 1, "runs that run at once; more wait in a queue")
	fl.IntVar(&f.runWorkers, "run-workers", 0, "worker slots of a run that does not ask for a number (default: CPUs / --workers)")
	fl.StringArrayVar(&f.specs, "spec", nil, "a spec file runs may name by its name: field (spec_name); repeatable")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the API bearer token (default: $LIMINAL_TOKEN)")
	fl.BoolVar(&f.insecureNoAuth, "insecure-no-auth", false, "serve without authentication when no token is configured (unsafe)")
	fl.DurationVar(&f.grace, "grace", 30*time.Second, "on SIGINT/SIGTERM, how long running runs may go on before they are cancelled")
	fl.IntVar(&f.maxAttempts, "max-attempts", 3, "attempts per partition for transient errors")
	fl.StringVar(&f.workDir, "work-dir", "", "where DuckDB spills (default: the OS temp directory)")
	fl.StringVar(&f.memoryLimit, "memory-limit", "", "DuckDB memory limit of each run, e.g. 4GB (default: DuckDB's, 80% of RAM)")
	fl.IntVar(&f.logLines, "log-lines", 10000, "log lines kept per run for the logs endpoint")
	fl.StringVar(&f.grpcListen, "listen", "", "host:port of the cluster's gRPC service for workers and clients (default: no cluster, runs run in-process)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate of the gRPC service (with --tls-key)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of the gRPC service")
	fl.DurationVar(&f.leaseTTL, "lease-ttl", 10*time.Second, "how long a worker's lease lives without a heartbeat before its partition runs elsewhere")
	fl.BoolVar(&f.speculative, "speculative", false, "run a copy of straggling partitions on another worker; the first to finish wins")
	return cmd
}

// apiToken reads the token of --token-file, else $LIMINAL_TOKEN.
func apiToken(f coordinatorFlags) (string, error) {
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("--token-file %s is empty", f.tokenFile)
		}
		return tok, nil
	}
	return strings.TrimSpace(os.Getenv("LIMINAL_TOKEN")), nil
}

func (g *globals) coordinator(ctx context.Context, f coordinatorFlags) error {
	if f.maxRuns < 1 || f.runWorkers < 0 || f.maxAttempts < 1 || f.grace < 0 || f.logLines < 1 {
		return exit(exitInvalid, errors.New("--workers, --max-attempts and --log-lines must be at least 1; --run-workers and --grace must not be negative"))
	}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		return exit(exitInvalid, fmt.Errorf("--http %q: want host:port", f.listen))
	}
	log, err := g.logger(false)
	if err != nil {
		return err
	}
	tok, err := apiToken(f)
	if err != nil {
		return exit(exitInvalid, err)
	}
	if tok == "" && !f.insecureNoAuth {
		return exit(exitInvalid, errors.New("no API token: set LIMINAL_TOKEN or --token-file (or --insecure-no-auth to serve without authentication)"))
	}
	if tok == "" {
		// Without a token, only this machine may reach the ports.
		for _, a := range []struct{ flag, addr string }{{"--http", f.listen}, {"--listen", f.grpcListen}} {
			if a.addr != "" && !isLoopback(a.addr) {
				return exit(exitInvalid, fmt.Errorf("--insecure-no-auth serves without authentication: %s %s must be a loopback address (127.0.0.1, ::1, localhost)", a.flag, a.addr))
			}
		}
		log.Warn("serving without authentication (--insecure-no-auth)")
	}
	specs := map[string]string{}
	for _, path := range f.specs {
		s, err := spec.Load(path)
		if err != nil {
			return exit(exitCode(err), err)
		}
		if prev, ok := specs[s.Name]; ok {
			return exit(exitInvalid, fmt.Errorf("--spec %s: name %q is also the name of %s", path, s.Name, prev))
		}
		specs[s.Name] = path
	}
	threads := max(1, runtime.NumCPU()/f.maxRuns)
	newExec := func(workers int) (coordinator.Executor, func(), error) {
		eng, err := engine.New(engine.Options{Slots: workers, Threads: max(threads, 1), MemoryLimit: f.memoryLimit, TempDir: f.workDir})
		if err != nil {
			return nil, nil, err
		}
		w := worker.New(eng)
		return w, func() { _ = w.Close(); _ = eng.Close() }, nil
	}
	m := metrics.New()
	var cl *clusterService
	if f.grpcListen != "" {
		if cl, err = startCluster(f, log, m); err != nil {
			return err
		}
		defer cl.close()
		newExec = func(workers int) (coordinator.Executor, func(), error) {
			// The coordinator's own engine plans, runs final stages and
			// checks; partitions run on the workers.
			eng, err := engine.New(engine.Options{Slots: 1, Threads: max(threads, 1), MemoryLimit: f.memoryLimit, TempDir: f.workDir})
			if err != nil {
				return nil, nil, err
			}
			w := worker.New(eng)
			ex := cl.srv.Executor(w)
			return ex, func() { _ = ex.Close(); _ = w.Close(); _ = eng.Close() }, nil
		}
	}
	cfg := api.Config{Token: tok, MaxRuns: f.maxRuns, Workers: f.runWorkers, StateDir: f.state, Specs: specs,
		NewExecutor: newExec, MaxAttempts: f.maxAttempts, Logger: log, Metrics: m, LogLines: f.logLines}
	if cl != nil {
		// The lease scheduler retries partitions (--max-attempts each);
		// the run loop does not retry on top of it.
		cfg.Resume, cfg.CoordinatorAttempts = true, 1
	}
	srv, err := api.New(cfg)
	if err != nil {
		return exit(exitFailed, err)
	}
	if cl != nil {
		cl.serve(srv.Handler(), tok)
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return exit(exitFailed, fmt.Errorf("listen: %w", err))
	}
	hs := newHTTPServer(srv.Handler())
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("coordinator listening", "addr", ln.Addr().String(), "workers", f.maxRuns, "state", f.state,
		"specs", len(specs), "auth", tok != "")

	select {
	case err := <-served:
		return exit(exitFailed, fmt.Errorf("serve: %w", err))
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", f.grace.String())
	gctx, cancel := context.WithTimeout(context.Background(), f.grace)
	_ = srv.Shutdown(gctx)
	cancel()
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	if err := hs.Shutdown(hctx); err != nil {
		_ = hs.Close()
	}
	if cl != nil {
		cl.stop()
	}
	log.Info("coordinator stopped")
	return nil
}

// isLoopback reports whether host:port listens on a loopback address only
// (an empty host or 0.0.0.0 listens everywhere).
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpIdleTimeout closes keep-alive connections that sit idle (200 idle
// connections otherwise stayed open for good).
var httpIdleTimeout = 2 * time.Minute

// newHTTPServer is the HTTP server of the coordinator's API and a worker's
// health endpoints: headers within 10 s, a request body within a minute,
// idle connections closed. No write timeout: long polls (?wait=) and logs
// stream for as long as they need.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: httpIdleTimeout}
}
