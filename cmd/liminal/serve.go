package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/liminal-data/liminal/coordinator/worker"
	"github.com/liminal-data/liminal/infer"
	"github.com/liminal-data/liminal/infer/serve"
	"github.com/liminal-data/liminal/spec"
)

// defaultListen is where a service without listen (and no --listen) runs.
const defaultListen = "127.0.0.1:8080"

type serveFlags struct {
	service        string
	listen         string
	maxBatchRows   int
	maxDelay       time.Duration
	requestTimeout time.Duration
	maxBodyBytes   int64
}

func newServeCmd(g *globals) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve SPEC",
		Short: "Serve the models of a spec's http_inference services over HTTP",
		Long: `Serve the model of every http_inference service of SPEC (or only --service NAME)
for real-time scoring, until Ctrl-C or SIGTERM. Services on different listen
addresses run side by side; services sharing an address share one server. A
service without listen (and no --listen) runs on ` + defaultListen + `.

Endpoints (Open Inference Protocol / KServe v2 REST, and plain JSON):
  GET  /v2/health/live, /v2/health/ready      liveness and readiness
  GET  /v2                                    server metadata
  GET  /v2/models/NAME[/ready]                model metadata (inputs, outputs) and readiness
  POST /v2/models/NAME/infer                  {"inputs": [{"name", "shape", "datatype", "data"}]}:
                                              one input per feature, or one [N, F] input
  POST /v1/models/NAME:predict                {"instances": [{"feature": value, ...}, ...]}
                                              or instances as lists in feature order

A JSON null, or a feature missing from an instance, is a missing value. Concurrent
requests to a model are micro-batched: they wait up to --max-delay for others and
are scored together, up to --max-batch-rows rows per model call (--max-delay 0
scores each request on its own).

On SIGINT or SIGTERM readiness turns 503, new requests are refused, requests in
flight finish, and liminal exits 0.`,
		Example: `  liminal serve service.yml
  liminal serve service.yml --service churn_api --listen 0.0.0.0:9000 --log-level debug

  curl -s localhost:8080/v1/models/churn_api:predict \
      -d '{"instances": [{"age": 42, "income": 51000, "tenure": 3}]}'
  curl -s localhost:8080/v2/models/churn_api/infer \
      -d '{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [[42, 51000, 3]]}]}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.serve(cmd.Context(), args[0], f)
		},
	}
	cmd.Flags().StringVar(&f.service, "service", "", "serve only this service (default: every http_inference service)")
	cmd.Flags().StringVar(&f.listen, "listen", "", "host:port to listen on, for every service (default: each service's listen, else "+defaultListen+")")
	cmd.Flags().IntVar(&f.maxBatchRows, "max-batch-rows", 1024, "most rows scored in one model call")
	cmd.Flags().DurationVar(&f.maxDelay, "max-delay", 2*time.Millisecond, "micro-batching window: how long a request waits for others (0: no batching)")
	cmd.Flags().DurationVar(&f.requestTimeout, "request-timeout", 30*time.Second, "longest a request may take (then 504)")
	cmd.Flags().Int64Var(&f.maxBodyBytes, "max-body-bytes", 16<<20, "largest request body (then 413)")
	return cmd
}

// served is one service with its model.
type served struct {
	svc    spec.Service
	model  infer.Model
	format string
}

// listener is one address with the server answering on it.
type listener struct {
	addr     string
	services []*served
	srv      *serve.Server
	http     *http.Server
	ln       net.Listener
}

func (g *globals) serve(ctx context.Context, path string, f serveFlags) error {
	if f.maxBatchRows < 1 {
		return exit(exitInvalid, errors.New("--max-batch-rows must be at least 1"))
	}
	if f.maxDelay < 0 || f.requestTimeout <= 0 || f.maxBodyBytes <= 0 {
		return exit(exitInvalid, errors.New("--max-delay must not be negative; --request-timeout and --max-body-bytes must be positive"))
	}
	if f.listen != "" {
		if _, _, err := net.SplitHostPort(f.listen); err != nil {
			return exit(exitInvalid, fmt.Errorf("--listen %q: want host:port", f.listen))
		}
	}
	log, err := g.logger(false)
	if err != nil {
		return err
	}
	s, err := spec.Load(path)
	if err != nil {
		return exit(exitCode(err), err)
	}
	// Pick the services and check them before loading any model.
	var picked []*served
	var cfgs []infer.Config
	var names []string
	for i, svc := range s.Services {
		if svc.Type != "http_inference" {
			continue
		}
		names = append(names, svc.Service)
		if f.service != "" && svc.Service != f.service {
			continue
		}
		if svc.Model == nil {
			return exit(exitInvalid, s.Errorf(fmt.Sprintf("services[%d]", i), "service %q has no model; liminal serve needs a model block", svc.Service))
		}
		cfg, err := worker.ModelConfig(s.Dir, svc.Model)
		if err != nil {
			return exit(exitInvalid, s.Errorf(fmt.Sprintf("services[%d].model", i), "%v", err))
		}
		picked = append(picked, &served{svc: svc})
		cfgs = append(cfgs, cfg)
	}
	switch {
	case len(names) == 0:
		return exit(exitInvalid, fmt.Errorf("%s defines no http_inference services to serve", path))
	case len(picked) == 0:
		return exit(exitInvalid, fmt.Errorf("unknown service %q (known: %s)", f.service, strings.Join(names, ", ")))
	}
	defer func() {
		for _, p := range picked {
			if p.model != nil {
				_ = p.model.Close()
			}
		}
	}()
	for i, p := range picked {
		start := time.Now()
		m, err := infer.Open(cfgs[i])
		if err != nil {
			return exit(exitFailed, fmt.Errorf("service %s: loading the model: %w", p.svc.Service, err))
		}
		p.model = m
		p.format = cfgs[i].Format
		if p.format == "" {
			p.format, _ = infer.DetectFormat(cfgs[i].Resolve(cfgs[i].Path))
		}
		log.Info("model loaded", "service", p.svc.Service, "format", p.format, "features", m.InputSchema().NumFields(),
			"outputs", m.OutputSchema().NumFields(), "duration", time.Since(start).Round(time.Millisecond))
	}
	// One server per address.
	byAddr := map[string]*listener{}
	var lns []*listener
	for _, p := range picked {
		addr := f.listen
		if addr == "" {
			addr = p.svc.Listen
		}
		if addr == "" {
			addr = defaultListen
		}
		l := byAddr[addr]
		if l == nil {
			l = &listener{addr: addr}
			byAddr[addr] = l
			lns = append(lns, l)
		}
		l.services = append(l.services, p)
	}
	opts := serve.Options{MaxBatchRows: f.maxBatchRows, MaxDelay: f.maxDelay, RequestTimeout: f.requestTimeout,
		MaxBodyBytes: f.maxBodyBytes, Version: version, Logger: log}
	if f.maxDelay == 0 {
		opts.MaxDelay = -1 // no batching
	}
	defer func() {
		for _, l := range lns {
			if l.ln != nil {
				l.ln.Close()
			}
		}
	}()
	for _, l := range lns {
		models := map[string]infer.Model{}
		for _, p := range l.services {
			models[p.svc.Service] = p.model
		}
		if l.srv, err = serve.New(models, opts); err != nil {
			return exit(exitFailed, err)
		}
		if l.ln, err = net.Listen("tcp", l.addr); err != nil {
			return exit(exitFailed, fmt.Errorf("listen on %s: %w", l.addr, err))
		}
		l.http = &http.Server{Handler: l.srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	}
	errc := make(chan error, len(lns))
	for _, l := range lns {
		addr := l.ln.Addr().String()
		for _, p := range l.services {
			log.Info("serving", "service", p.svc.Service, "format", p.format, "address", "http://"+addr)
			fmt.Fprintf(g.stderr, "serving %s (%s, %d features) on http://%s\n", p.svc.Service, p.format, p.model.InputSchema().NumFields(), addr)
		}
		go func() {
			if err := l.http.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serving on %s: %w", addr, err)
			}
		}()
	}
	var failed error
	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing requests in flight")
	case failed = <-errc:
		log.Error("server failed; shutting down", "error", failed)
	}
	sctx, cancel := context.WithTimeout(context.Background(), f.requestTimeout+5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, l := range lns {
		wg.Go(func() {
			// Readiness turns 503 and admitted requests drain while the
			// listener closes and open connections finish.
			var inner sync.WaitGroup
			inner.Go(func() {
				if err := l.srv.Shutdown(sctx); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", l.addr, err))
					mu.Unlock()
				}
			})
			if err := l.http.Shutdown(sctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", l.addr, err))
				mu.Unlock()
			}
			inner.Wait()
		})
	}
	wg.Wait()
	if failed != nil {
		return exit(exitFailed, failed)
	}
	if err := errors.Join(errs...); err != nil {
		return exit(exitFailed, fmt.Errorf("shutdown: %w", err))
	}
	log.Info("stopped")
	return nil
}
