package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/internal/authn"
	"github.com/liminal-data/liminal/metrics"
	"github.com/liminal-data/liminal/spec"
)

// OpenAPI is the OpenAPI 3 document of the API, served at
// /api/v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// Error codes of the JSON error body; stable, clients may switch on them.
const (
	CodeNotFound         = "not_found"
	CodeInvalidSpec      = "invalid_spec"
	CodeUnauthorized     = "unauthorized"
	CodeConflict         = "conflict"
	CodeBadRequest       = "bad_request"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

// ExecutorFactory builds the executor of one run with the given worker
// slots; release frees it once the run is over.
type ExecutorFactory func(workers int) (exec coordinator.Executor, release func(), err error)

// Config configures a Server.
type Config struct {
	// Token is the bearer token every endpoint but /healthz and /readyz
	// requires; "" turns authentication off (liminal coordinator
	// --insecure-no-auth).
	Token string
	// MaxRuns is how many runs run at once (default 1); more wait in a
	// queue, first come first served.
	MaxRuns int
	// Workers is the worker slots of a run that does not ask for a number
	// (default NumCPU/MaxRuns, at least 1).
	Workers int
	// StateDir, when set, keeps every run as DIR/runs/ID.json so that a
	// restarted server lists them.
	StateDir string
	// Specs are the registered specs, by their name: field, as file paths;
	// a run names one with spec_name. They are re-read at each submission.
	Specs map[string]string
	// NewExecutor builds each run's executor (required).
	NewExecutor ExecutorFactory
	// MaxAttempts per partition (default 3).
	MaxAttempts int
	// Logger receives the server's log and every run's (default: none).
	Logger *slog.Logger
	// Metrics receives every run's events (default: a new Metrics).
	Metrics *metrics.Metrics
	// LogLines is how many log lines of each run are kept (default 10000).
	LogLines int
	// Resume restarts the runs that were queued or running when the
	// previous process stopped (cluster coordinators, whose journal keeps
	// the partitions already done), instead of marking them failed.
	Resume bool
	// CoordinatorAttempts, when set, overrides MaxAttempts for the
	// coordinator's own retries (a cluster's scheduler retries instead).
	CoordinatorAttempts int
}

// InlineSpecFile names inline specs in error messages ("inline.yml:7: ...").
const InlineSpecFile = "inline.yml"

// maxBody bounds a request body.
const maxBody = 4 << 20

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Server serves the REST API and runs the submitted runs in-process. Build
// it with New; it is safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics.Metrics
	handler http.Handler
	paths   *http.ServeMux // every route without its method, to tell 405 from 404

	mu       sync.Mutex
	runs     map[string]*run
	queue    []*run
	running  map[*run]bool
	draining bool
	wg       sync.WaitGroup
}

// New returns a server; with Config.StateDir it loads the runs kept there,
// marking those that were queued or running as failed ("coordinator
// restarted").
func New(cfg Config) (*Server, error) {
	if cfg.NewExecutor == nil {
		return nil, errors.New("api: Config.NewExecutor is required")
	}
	if cfg.MaxRuns <= 0 {
		cfg.MaxRuns = 1
	}
	if cfg.Workers <= 0 {
		cfg.Workers = max(1, runtime.NumCPU()/cfg.MaxRuns)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.LogLines <= 0 {
		cfg.LogLines = 10000
	}
	s := &Server{cfg: cfg, log: cfg.Logger, m: cfg.Metrics, runs: map[string]*run{}, running: map[*run]bool{}}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.routes()
	s.mu.Lock()
	s.dispatchLocked()
	s.mu.Unlock()
	return s, nil
}

// Handler is the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() {
	mux := http.NewServeMux()
	s.paths = http.NewServeMux()
	seen := map[string]bool{}
	handle := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+path, h)
		if !seen[path] {
			seen[path] = true
			s.paths.HandleFunc(path, func(http.ResponseWriter, *http.Request) {})
		}
	}
	handle("GET", "/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	handle("GET", "/readyz", s.readyz)
	handle("GET", "/metrics", func(w http.ResponseWriter, r *http.Request) { s.m.Handler().ServeHTTP(w, r) })
	handle("GET", "/api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(OpenAPI)
	})
	handle("POST", "/api/v1/runs", s.submit)
	handle("GET", "/api/v1/runs", s.list)
	handle("GET", "/api/v1/runs/{id}", s.get)
	handle("POST", "/api/v1/runs/{id}/cancel", s.cancel)
	handle("GET", "/api/v1/runs/{id}/logs", s.logs)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, pat := s.paths.Handler(r); pat != "" {
			writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
			return
		}
		writeError(w, http.StatusNotFound, CodeNotFound, "no endpoint "+r.URL.Path)
	})
	s.handler = s.authenticate(mux)
}

// authenticate lets /healthz and /readyz through and requires the bearer
// token everywhere else. The token is compared in constant time and never
// logged.
func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.cfg.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Health and metrics are open, as documented: Prometheus scrapes
		// /metrics without a credential (deploy/k8s), and neither carries
		// run data or secrets.
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			next.ServeHTTP(w, r)
			return
		}
		h := r.Header.Get("Authorization")
		tok, ok := authn.BearerToken(h)
		got := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="liminal"`)
			msg := "missing bearer token"
			if h != "" {
				msg = "invalid bearer token"
			}
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting_down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// apiError is the JSON error body.
type apiError struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Details []string `json:"details"`
}

func writeError(w http.ResponseWriter, status int, code, msg string, details ...string) {
	if details == nil {
		details = []string{}
	}
	writeJSON(w, status, apiError{Error: errorBody{Code: code, Message: msg, Details: details}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(apiError{Error: errorBody{Code: CodeInternal, Message: err.Error(), Details: []string{}}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// submit handles POST /api/v1/runs.
func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	var req request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "request body: "+err.Error())
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "request body: want one JSON object")
		return
	}
	switch {
	case (req.Spec == "") == (req.SpecName == ""):
		writeError(w, http.StatusBadRequest, CodeBadRequest, "give exactly one of spec (inline YAML) and spec_name (a registered spec)")
		return
	case req.RunID != "" && !runIDPattern.MatchString(req.RunID):
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("run_id %q: want 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", req.RunID))
		return
	case req.Workers < 0 || req.Workers > 1024:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "workers must be between 1 and 1024 (0: the default)")
		return
	case req.TargetRows < 0:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "target_rows must not be negative")
		return
	case req.SpecFile != "" && (req.Spec == "" || !filepath.IsAbs(req.SpecFile)):
		writeError(w, http.StatusBadRequest, CodeBadRequest, "spec_file must be an absolute path, given with an inline spec")
		return
	}
	fp := fingerprint(req)
	if req.RunID != "" {
		if existing, status, ok := s.existing(req.RunID, fp); ok {
			if status == http.StatusConflict {
				writeError(w, status, CodeConflict, fmt.Sprintf("run_id %q is already used by a different request", req.RunID))
				return
			}
			writeJSON(w, http.StatusOK, existing.snapshot(true))
			return
		}
	}
	sp, p, pi, recipe, err := s.parse(req)
	if err != nil {
		var se spec.Errors
		var e1 *spec.Error
		var nf *unknownSpec
		switch {
		case errors.As(err, &nf):
			writeError(w, http.StatusBadRequest, CodeInvalidSpec, err.Error(), s.specNames()...)
		case errors.As(err, &se):
			details := make([]string, len(se))
			for i, e := range se {
				details[i] = e.Error()
			}
			msg := "invalid spec: 1 problem"
			if len(se) != 1 {
				msg = fmt.Sprintf("invalid spec: %d problems", len(se))
			}
			writeError(w, http.StatusBadRequest, CodeInvalidSpec, msg, details...)
		case errors.As(err, &e1):
			writeError(w, http.StatusBadRequest, CodeInvalidSpec, "invalid spec", e1.Error())
		default:
			writeError(w, http.StatusBadRequest, CodeInvalidSpec, "invalid spec", err.Error())
		}
		return
	}
	workers := req.Workers
	if workers == 0 {
		workers = s.cfg.Workers
	}
	id := req.RunID
	if id == "" {
		id = coordinator.NewRunID()
	}
	ru := &run{fingerprint: fp, spec: sp, pi: pi, req: req, recipe: recipe, logs: newRing(s.cfg.LogLines), done: make(chan struct{}),
		info: Run{ID: id, Status: StatusQueued, Spec: sp.Name, SpecName: req.SpecName, Pipeline: p.Pipeline,
			Workers: workers, TargetRows: req.TargetRows, CreatedAt: time.Now().UTC(), Tasks: []TaskProgress{}}}
	ru.log = slog.New(slog.NewMultiHandler(s.log.Handler(), slog.NewJSONHandler(ru.logs, nil)))

	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the coordinator is shutting down")
		return
	}
	if existing, ok := s.runs[id]; ok { // submitted meanwhile
		s.mu.Unlock()
		if existing.fingerprint != fp {
			writeError(w, http.StatusConflict, CodeConflict, fmt.Sprintf("run_id %q is already used by a different request", id))
			return
		}
		writeJSON(w, http.StatusOK, existing.snapshot(true))
		return
	}
	ru.ctx, ru.cancel = context.WithCancel(context.Background())
	s.runs[id] = ru
	s.queue = append(s.queue, ru)
	s.save(ru)
	s.dispatchLocked()
	s.mu.Unlock()
	ru.log.Info("run submitted", "run_id", id, "spec", sp.Name, "pipeline", p.Pipeline, "workers", workers)
	writeJSON(w, http.StatusAccepted, ru.snapshot(true))
}

// existing finds a run by id: 200 when the request matches it, 409 when
// not.
func (s *Server) existing(id, fp string) (*run, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[id]
	if !ok {
		return nil, 0, false
	}
	if r.fingerprint != fp {
		return r, http.StatusConflict, true
	}
	return r, http.StatusOK, true
}

func fingerprint(req request) string {
	req.RunID = ""
	b, _ := json.Marshal(req)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

type unknownSpec struct{ name string }

func (e *unknownSpec) Error() string { return fmt.Sprintf("unknown spec_name %q", e.name) }

func (s *Server) specNames() []string {
	names := make([]string, 0, len(s.cfg.Specs))
	for n := range s.cfg.Specs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// parse reads the request's spec and picks its pipeline. The recipe is
// how worker processes rebuild the same tasks.
func (s *Server) parse(req request) (*spec.Spec, *spec.Pipeline, int, *coordinator.Recipe, error) {
	var raw []byte
	var file string
	if req.SpecName != "" {
		path, ok := s.cfg.Specs[req.SpecName]
		if !ok {
			return nil, nil, 0, nil, &unknownSpec{req.SpecName}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, 0, nil, fmt.Errorf("spec %s: %w", path, err)
		}
		raw, file = b, path
	} else {
		// Relative paths of an inline spec resolve against its spec_file's
		// directory, else the working directory of the coordinator.
		raw, file = []byte(req.Spec), req.SpecFile
		if file == "" {
			file = InlineSpecFile
		}
	}
	env := map[string]string{}
	lookup := func(name string) (string, bool) {
		if v, ok := req.Env[name]; ok {
			env[name] = v
			return v, true
		}
		v, ok := os.LookupEnv(name)
		if ok {
			env[name] = v
		}
		return v, ok
	}
	sp, err := spec.ParseWithEnv(raw, file, lookup)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	p, err := sp.Pipeline(req.Pipeline)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	pi := 0
	for i := range sp.Pipelines {
		if &sp.Pipelines[i] == p {
			pi = i
		}
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	return sp, p, pi, &coordinator.Recipe{Spec: raw, File: abs, Pipeline: pi, Env: env, TargetRows: req.TargetRows}, nil
}

// dispatchLocked starts queued runs while there is room. s.mu is held.
func (s *Server) dispatchLocked() {
	for !s.draining && len(s.running) < s.cfg.MaxRuns && len(s.queue) > 0 {
		r := s.queue[0]
		s.queue = s.queue[1:]
		s.running[r] = true
		now := time.Now().UTC()
		r.mu.Lock()
		r.info.Status, r.info.StartedAt = StatusRunning, &now
		r.mu.Unlock()
		s.save(r)
		s.wg.Add(1)
		go s.execute(r)
	}
	s.m.SetQueuedRuns(len(s.queue))
}

// execute runs r to its end.
func (s *Server) execute(r *run) {
	defer s.wg.Done()
	ctx := r.ctx
	log := r.log.With("run_id", r.info.ID)
	mrun := s.m.StartRun(r.info.Pipeline)
	res := s.runTasks(ctx, r, mrun, log)
	if res.Tasks == nil {
		res.Tasks = []coordinator.TaskResult{}
	}
	if r.spec.File != "" {
		res.Spec = r.spec.File
	}
	mrun.Finish(res)
	s.finish(r, res)
}

func (s *Server) runTasks(ctx context.Context, r *run, mrun *metrics.Run, log *slog.Logger) *coordinator.RunResult {
	start := time.Now().UTC()
	failed := func(err error) *coordinator.RunResult {
		res := &coordinator.RunResult{RunID: r.info.ID, Pipeline: r.info.Pipeline, Status: coordinator.StatusFailed, ExitCode: 1,
			Error: err.Error(), StartedAt: start, FinishedAt: time.Now().UTC()}
		if coordinator.IsInvalid(err) {
			res.ExitCode = 2
		}
		if ctx.Err() != nil {
			res.Status = coordinator.StatusCancelled
		}
		res.DurationMS = res.FinishedAt.Sub(start).Milliseconds()
		log.Error("run "+res.Status, "error", res.Error)
		return res
	}
	p := &r.spec.Pipelines[r.pi]
	tasks, err := coordinator.Resolve(ctx, r.spec, p, r.pi, coordinator.Overrides{TargetRows: r.info.TargetRows, RunID: r.info.ID})
	if err != nil {
		return failed(err)
	}
	for _, t := range tasks {
		t.Recipe = r.recipe
	}
	r.mu.Lock()
	for _, t := range tasks {
		r.task(t.Name)
	}
	workers := r.info.Workers
	r.mu.Unlock()
	exec, release, err := s.cfg.NewExecutor(workers)
	if err != nil {
		return failed(err)
	}
	defer release()
	tk := tracker{r}
	attempts := s.cfg.MaxAttempts
	if s.cfg.CoordinatorAttempts > 0 {
		attempts = s.cfg.CoordinatorAttempts
	}
	co := coordinator.New(executor{Executor: mrun.Executor(exec), tk: tk},
		coordinator.Options{MaxAttempts: attempts, Logger: log, Progress: metrics.MultiProgress{mrun, tk}})
	return co.Run(ctx, r.info.ID, p.Pipeline, tasks)
}

// finish records a run's end and starts the next queued one.
func (s *Server) finish(r *run, res *coordinator.RunResult) {
	now := time.Now().UTC()
	r.mu.Lock()
	r.info.Status, r.info.FinishedAt, r.info.Error, r.info.Result = res.Status, &now, res.Error, res
	r.mu.Unlock()
	r.cancel()
	s.mu.Lock()
	delete(s.running, r)
	s.save(r)
	s.dispatchLocked()
	s.mu.Unlock()
	close(r.done)
}

// cancelQueuedLocked ends a run that has not started. s.mu is held.
func (s *Server) cancelQueuedLocked(r *run, why string) {
	s.queue = slices.DeleteFunc(s.queue, func(q *run) bool { return q == r })
	now := time.Now().UTC()
	r.mu.Lock()
	r.info.Status, r.info.FinishedAt, r.info.Error = coordinator.StatusCancelled, &now, why
	r.info.Result = &coordinator.RunResult{RunID: r.info.ID, Pipeline: r.info.Pipeline, Status: coordinator.StatusCancelled,
		ExitCode: 1, Error: why, StartedAt: now, FinishedAt: now, Tasks: []coordinator.TaskResult{}}
	r.mu.Unlock()
	r.cancel()
	close(r.done)
	s.save(r)
	s.m.SetQueuedRuns(len(s.queue))
	r.log.Info("run cancelled", "run_id", r.info.ID, "reason", why)
}

func (s *Server) lookup(w http.ResponseWriter, req *http.Request) *run {
	id := req.PathValue("id")
	s.mu.Lock()
	r := s.runs[id]
	s.mu.Unlock()
	if r == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no run %q", id))
	}
	return r
}

// maxWait bounds GET /api/v1/runs/{id}?wait=.
const maxWait = time.Minute

// get handles GET /api/v1/runs/{id}. With ?wait=DURATION (e.g. 500ms, 10s;
// at most a minute) it answers when the run is over or the duration has
// passed, whichever comes first: a client following a run sees its end at
// once instead of at its next poll.
func (s *Server) get(w http.ResponseWriter, req *http.Request) {
	var wait time.Duration
	if v := req.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("wait %q: want a duration such as 500ms or 10s", v))
			return
		}
		wait = min(d, maxWait)
	}
	r := s.lookup(w, req)
	if r == nil {
		return
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-r.done:
		case <-t.C:
		case <-req.Context().Done():
		}
		t.Stop()
	}
	writeJSON(w, http.StatusOK, r.snapshot(true))
}

// cancel handles POST /api/v1/runs/{id}/cancel.
func (s *Server) cancel(w http.ResponseWriter, req *http.Request) {
	r := s.lookup(w, req)
	if r == nil {
		return
	}
	s.mu.Lock()
	if r.finished() {
		s.mu.Unlock()
		snap := r.snapshot(false)
		writeError(w, http.StatusConflict, CodeConflict, fmt.Sprintf("run %q is already %s", snap.ID, snap.Status))
		return
	}
	if slices.Contains(s.queue, r) {
		s.cancelQueuedLocked(r, "cancelled by request before it started")
	} else {
		r.log.Info("run cancel requested", "run_id", r.info.ID)
		r.cancel()
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, r.snapshot(true))
}

// runList is the body of GET /api/v1/runs.
type runList struct {
	Runs []Run `json:"runs"`
}

// list handles GET /api/v1/runs.
func (s *Server) list(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	pipeline, status := q.Get("pipeline"), q.Get("status")
	if status != "" && !slices.Contains([]string{StatusQueued, StatusRunning, coordinator.StatusSucceeded,
		coordinator.StatusFailed, coordinator.StatusCancelled}, status) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("unknown status %q (want queued, running, succeeded, failed or cancelled)", status))
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("limit %q: want 1 to 1000", v))
			return
		}
		limit = n
	}
	s.mu.Lock()
	all := make([]*run, 0, len(s.runs))
	for _, r := range s.runs {
		all = append(all, r)
	}
	s.mu.Unlock()
	out := runList{Runs: []Run{}}
	snaps := make([]Run, 0, len(all))
	for _, r := range all {
		snap := r.snapshot(false)
		if (pipeline == "" || snap.Pipeline == pipeline) && (status == "" || snap.Status == status) {
			snaps = append(snaps, snap)
		}
	}
	slices.SortFunc(snaps, func(a, b Run) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	out.Runs = append(out.Runs, snaps[:min(limit, len(snaps))]...)
	writeJSON(w, http.StatusOK, out)
}

// logPage is the body of GET /api/v1/runs/{id}/logs.
type logPage struct {
	RunID     string            `json:"run_id"`
	Lines     []json.RawMessage `json:"lines"`
	Next      int64             `json:"next"`
	Truncated bool              `json:"truncated"`
}

// logs handles GET /api/v1/runs/{id}/logs.
func (s *Server) logs(w http.ResponseWriter, req *http.Request) {
	r := s.lookup(w, req)
	if r == nil {
		return
	}
	var since int64
	if v := req.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("since %q: want a line number ≥ 0", v))
			return
		}
		since = n
	}
	limit := 1000
	if v := req.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("limit %q: want 1 to 10000", v))
			return
		}
		limit = n
	}
	lines, next, truncated := r.logs.since(since, limit)
	writeJSON(w, http.StatusOK, logPage{RunID: r.info.ID, Lines: lines, Next: next, Truncated: truncated})
}

// Shutdown stops the server gracefully: readiness turns 503, new runs are
// refused, queued runs are cancelled, and running runs may finish until
// ctx is done; then they are cancelled, and Shutdown returns once they
// have ended (aborted their staging). It does not stop the HTTP server.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for _, r := range slices.Clone(s.queue) {
		s.cancelQueuedLocked(r, "coordinator shutting down")
	}
	n := len(s.running)
	s.mu.Unlock()
	if n > 0 {
		s.log.Info("shutting down: waiting for running runs", "runs", n)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for r := range s.running {
		s.log.Warn("grace period over: cancelling run", "run_id", r.info.ID)
		r.cancel()
	}
	s.mu.Unlock()
	<-done
	return nil
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}
