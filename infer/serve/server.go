package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/infer"
)

// Options tune a Server. Zero values pick the defaults.
type Options struct {
	// MaxBatchRows bounds the rows of one micro-batch (default 1024). A
	// request with more rows runs alone.
	MaxBatchRows int
	// MaxDelay is the micro-batching window: how long the first queued
	// request waits for others to join its batch (default 2ms). A negative
	// value disables batching: each request calls Predict on its own.
	MaxDelay time.Duration
	// MaxBodyBytes bounds a request body (default 16 MiB); larger ones get
	// 413.
	MaxBodyBytes int64
	// RequestTimeout bounds a request from its arrival to its answer
	// (default 30s); a request that runs out gets 504.
	RequestTimeout time.Duration
	// Workers is the number of Predict calls that may run at once per model
	// when batching (default GOMAXPROCS). While they are all busy, new
	// requests gather into the next batch.
	Workers int
	// QueueSize bounds the requests waiting per model (default 4096); when
	// it is full, requests wait (up to their timeout) for room.
	QueueSize int
	// Version is reported by the server metadata endpoint (default "dev").
	Version string
	// Logger receives a debug line per request and a warning per error
	// (default: discard).
	Logger *slog.Logger
}

func (o *Options) defaults() error {
	if o.MaxBatchRows < 0 || o.MaxBodyBytes < 0 || o.RequestTimeout < 0 || o.Workers < 0 || o.QueueSize < 0 {
		return errors.New("serve: negative option")
	}
	if o.MaxBatchRows == 0 {
		o.MaxBatchRows = 1024
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 2 * time.Millisecond
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 16 << 20
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.QueueSize == 0 {
		o.QueueSize = 4096
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server answers inference requests for a set of named models. It is an
// http.Handler; Shutdown stops it.
type Server struct {
	opts   Options
	models map[string]*model
	names  []string
	mux    *http.ServeMux

	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup // infer requests between admission and answer

	quit     chan struct{} // closed by Shutdown once requests drained
	quitOnce sync.Once
	batchers sync.WaitGroup
	stopped  chan struct{} // closed when every batcher has exited
	base     context.Context
	cancel   context.CancelFunc
}

// model is one served model with its request layout and batch queue.
type model struct {
	name     string
	m        infer.Model
	features []string
	index    map[string]int
	fams     []int
	req      *arrow.Schema // the columns requests are decoded into
	mem      memory.Allocator
	queue    chan *call
	work     chan []*call

	predicts atomic.Int64 // Predict calls (for tests and metrics)
	enqueued atomic.Int64 // requests queued for the batcher
}

// call is one request waiting for its rows to be scored.
type call struct {
	ctx  context.Context
	cols []arrow.Array // owned by the batcher once queued
	n    int
	at   time.Time
	done chan callResult // buffered: the batcher never blocks on it
}

type callResult struct {
	rec arrow.RecordBatch
	err error
}

// New returns a Server for models (keyed by the name used in URLs). The
// models stay owned by the caller, who closes them after Shutdown.
func New(models map[string]infer.Model, opts Options) (*Server, error) {
	if len(models) == 0 {
		return nil, errors.New("serve: no models")
	}
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, models: map[string]*model{}, quit: make(chan struct{}), stopped: make(chan struct{})}
	s.base, s.cancel = context.WithCancel(context.Background())
	for name, im := range models {
		if name == "" || strings.ContainsAny(name, "/:") {
			return nil, fmt.Errorf("serve: model name %q: want a non-empty name without / or :", name)
		}
		in := im.InputSchema()
		m := &model{name: name, m: im, index: map[string]int{}, mem: memory.DefaultAllocator}
		fields := make([]arrow.Field, in.NumFields())
		for i, f := range in.Fields() {
			fam, t, ok := family(f.Type)
			if !ok {
				return nil, fmt.Errorf("serve: model %s: input %q has type %s, which cannot be sent as JSON", name, f.Name, f.Type)
			}
			if _, dup := m.index[f.Name]; dup {
				return nil, fmt.Errorf("serve: model %s: input %q appears twice", name, f.Name)
			}
			m.index[f.Name] = i
			m.features = append(m.features, f.Name)
			m.fams = append(m.fams, fam)
			fields[i] = arrow.Field{Name: f.Name, Type: t, Nullable: true}
		}
		m.req = arrow.NewSchema(fields, nil)
		s.models[name] = m
		s.names = append(s.names, name)
	}
	sort.Strings(s.names)
	if s.opts.MaxDelay > 0 {
		for _, m := range s.models {
			m.queue = make(chan *call, s.opts.QueueSize)
			m.work = make(chan []*call)
			s.batchers.Add(1 + s.opts.Workers)
			go s.collect(m)
			for range s.opts.Workers {
				go s.worker(m)
			}
		}
	}
	go func() {
		s.batchers.Wait()
		close(s.stopped)
	}()
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/health/live", s.get(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	}))
	mux.HandleFunc("/v2/health/ready", s.get(func(w http.ResponseWriter, r *http.Request) {
		if !s.ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]bool{"ready": false})
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
	}))
	mux.HandleFunc("/v2", s.get(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"name": "liminal", "version": s.opts.Version, "extensions": []string{}, "models": s.names})
	}))
	mux.HandleFunc("/v2/models/{name}", s.get(s.handleMetadata))
	mux.HandleFunc("/v2/models/{name}/ready", s.get(func(w http.ResponseWriter, r *http.Request) {
		m, ok := s.model(w, r)
		if !ok {
			return
		}
		if !s.ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"name": m.name, "ready": false})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": m.name, "ready": true})
	}))
	mux.HandleFunc("/v2/models/{name}/infer", s.post(s.handleV2Infer))
	mux.HandleFunc("/v1/models/{name}", s.post(s.handleV1Predict))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, &httpError{http.StatusNotFound, fmt.Sprintf("no endpoint %s %s (see GET /v2, POST /v2/models/{name}/infer, POST /v1/models/{name}:predict)", r.Method, r.URL.Path)})
	})
	s.mux = mux
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	s.mux.ServeHTTP(sw, r)
	if s.opts.Logger.Enabled(r.Context(), slog.LevelDebug) {
		s.opts.Logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.code,
			"rows", sw.rows, "duration", time.Since(start))
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
	rows int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) get(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			s.fail(w, r, &httpError{http.StatusMethodNotAllowed, r.Method + " not allowed; use GET"})
			return
		}
		h(w, r)
	}
}

func (s *Server) post(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			s.fail(w, r, &httpError{http.StatusMethodNotAllowed, r.Method + " not allowed; use POST"})
			return
		}
		h(w, r)
	}
}

func (s *Server) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closing
}

// model finds the model named in the URL, answering 404 when none is.
func (s *Server) model(w http.ResponseWriter, r *http.Request) (*model, bool) {
	name := r.PathValue("name")
	m, ok := s.models[name]
	if !ok {
		s.fail(w, r, &httpError{http.StatusNotFound, fmt.Sprintf("unknown model %q (serving: %s)", name, strings.Join(s.names, ", "))})
	}
	return m, ok
}

type tensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	m, ok := s.model(w, r)
	if !ok {
		return
	}
	meta := func(sc *arrow.Schema) []tensorMeta {
		out := make([]tensorMeta, sc.NumFields())
		for i, f := range sc.Fields() {
			out[i] = tensorMeta{Name: f.Name, Datatype: datatype(f.Type), Shape: []int64{-1}}
		}
		return out
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name":     m.name,
		"versions": []string{},
		"platform": "liminal",
		"inputs":   meta(m.m.InputSchema()),
		"outputs":  meta(m.m.OutputSchema()),
	})
}

// admit registers an inference request unless the server is shutting down.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.inflight.Add(1)
	}
	s.mu.Unlock()
	if closing {
		s.fail(w, r, &httpError{http.StatusServiceUnavailable, "server is shutting down"})
	}
	return !closing
}

// readBody reads the request body, bounded by MaxBodyBytes, and decodes
// it into v.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, v any) *httpError {
	// Only JSON: a browser page may post text/plain (or a form) to a
	// developer's localhost without asking, never application/json.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &httpError{http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type must be application/json, got %q", r.Header.Get("Content-Type"))}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", s.opts.MaxBodyBytes)}
		}
		return badRequest("reading the request body: %v", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("invalid JSON: %v", err)
	}
	return nil
}

func (s *Server) handleV2Infer(w http.ResponseWriter, r *http.Request) {
	m, ok := s.model(w, r)
	if !ok || !s.admit(w, r) {
		return
	}
	defer s.inflight.Done()
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	defer cancel()
	var req v2Request
	if e := s.readBody(w, r, &req); e != nil {
		s.fail(w, r, e)
		return
	}
	out := m.m.OutputSchema()
	which := make([]int, 0, out.NumFields())
	if len(req.Outputs) == 0 {
		for i := range out.NumFields() {
			which = append(which, i)
		}
	}
	for _, o := range req.Outputs {
		idx := out.FieldIndices(o.Name)
		if len(idx) == 0 {
			names := make([]string, out.NumFields())
			for i, f := range out.Fields() {
				names[i] = f.Name
			}
			s.fail(w, r, badRequest("unknown output %q (model outputs: %s)", o.Name, strings.Join(names, ", ")))
			return
		}
		which = append(which, idx[0])
	}
	cols, n, e := m.decodeV2(&req)
	if e != nil {
		s.fail(w, r, e)
		return
	}
	rec, e := s.predict(ctx, m, cols, n)
	if e != nil {
		s.fail(w, r, e)
		return
	}
	defer rec.Release()
	setRows(w, n)
	writeBody(w, appendV2Response(make([]byte, 0, 64+n*24*len(which)), m.name, req.ID, rec, which))
}

func (s *Server) handleV1Predict(w http.ResponseWriter, r *http.Request) {
	name, verb, found := strings.Cut(r.PathValue("name"), ":")
	if !found || verb != "predict" {
		s.fail(w, r, &httpError{http.StatusNotFound, fmt.Sprintf("no endpoint POST %s (want /v1/models/{name}:predict)", r.URL.Path)})
		return
	}
	r.SetPathValue("name", name)
	m, ok := s.model(w, r)
	if !ok || !s.admit(w, r) {
		return
	}
	defer s.inflight.Done()
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	defer cancel()
	var req v1Request
	if e := s.readBody(w, r, &req); e != nil {
		s.fail(w, r, e)
		return
	}
	if len(req.Instances) == 0 {
		s.fail(w, r, badRequest(`want {"instances": [...]}: a list of objects {"feature": value} or of lists of values in feature order (%s)`, m.featureList()))
		return
	}
	cols, n, e := m.decodeV1(req.Instances)
	if e != nil {
		s.fail(w, r, e)
		return
	}
	rec, e := s.predict(ctx, m, cols, n)
	if e != nil {
		s.fail(w, r, e)
		return
	}
	defer rec.Release()
	setRows(w, n)
	writeBody(w, appendV1Response(make([]byte, 0, 32+n*24*int(rec.NumCols())), rec))
}

func setRows(w http.ResponseWriter, n int) {
	if sw, ok := w.(*statusWriter); ok {
		sw.rows = n
	}
}

// predict scores n rows (cols are consumed): through the model's batcher,
// or directly when batching is off.
func (s *Server) predict(ctx context.Context, m *model, cols []arrow.Array, n int) (arrow.RecordBatch, *httpError) {
	if n == 0 {
		releaseArrays(cols)
		return emptyRecord(m.m.OutputSchema(), m.mem), nil
	}
	if m.queue == nil {
		rec := array2rec(m.req, cols, n)
		defer rec.Release()
		m.predicts.Add(1)
		out, err := m.m.Predict(ctx, rec)
		if err == nil && out.NumRows() != int64(n) {
			out.Release()
			err = fmt.Errorf("model returned %d rows for %d", out.NumRows(), n)
		}
		if err != nil {
			return nil, s.predictError(ctx, err)
		}
		return out, nil
	}
	c := &call{ctx: ctx, cols: cols, n: n, at: time.Now(), done: make(chan callResult, 1)}
	select {
	case m.queue <- c:
		m.enqueued.Add(1)
	case <-s.quit:
		releaseArrays(cols)
		return nil, &httpError{http.StatusServiceUnavailable, "server is shutting down"}
	case <-ctx.Done():
		releaseArrays(cols)
		return nil, s.predictError(ctx, ctx.Err())
	}
	select {
	case res := <-c.done:
		if res.err != nil {
			return nil, s.predictError(ctx, res.err)
		}
		return res.rec, nil
	case <-ctx.Done():
		return nil, s.predictError(ctx, ctx.Err())
	case <-s.stopped:
		// The batchers are gone (Shutdown gave up waiting); the answer
		// may still have arrived.
		select {
		case res := <-c.done:
			if res.err != nil {
				return nil, s.predictError(ctx, res.err)
			}
			return res.rec, nil
		default:
		}
		return nil, &httpError{http.StatusServiceUnavailable, "server is shutting down"}
	}
}

func (s *Server) predictError(ctx context.Context, err error) *httpError {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &httpError{http.StatusGatewayTimeout, fmt.Sprintf("timed out after %s", s.opts.RequestTimeout)}
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return &httpError{499, "request cancelled"}
	case errors.Is(err, errShutdown):
		return &httpError{http.StatusServiceUnavailable, "server is shutting down"}
	}
	return &httpError{http.StatusInternalServerError, "model failed: " + err.Error()}
}

var errShutdown = errors.New("server is shutting down")

// fail answers {"error": ...} with the error's status and logs it.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, e *httpError) {
	s.opts.Logger.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", e.code, "error", e.msg)
	if e.code == 499 { // the client is gone; nobody reads the answer
		return
	}
	writeJSON(w, e.code, map[string]string{"error": e.msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeBody(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// Shutdown stops the server gracefully: readiness turns 503 and new
// inference requests get 503 at once, requests already admitted (queued or
// being scored) finish, and the batchers exit. It returns ctx's error if
// ctx ends first; the batchers then still answer what is queued. The HTTP
// listener is the caller's (http.Server.Shutdown); the models too.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	drained := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(drained)
	}()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.quitOnce.Do(func() { close(s.quit) })
	select {
	case <-s.stopped:
	case <-ctx.Done():
		err = ctx.Err()
	}
	return err
}

// Predicts returns how many Predict calls the server made for a model.
func (s *Server) Predicts(name string) int64 {
	if m, ok := s.models[name]; ok {
		return m.predicts.Load()
	}
	return 0
}
