package api_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/liminal-data/liminal/api"
	_ "github.com/liminal-data/liminal/connectors/all"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/coordinator/worker"
	"github.com/liminal-data/liminal/engine"
)

const token = "s3cret-token"

var (
	docOnce sync.Once
	docErr  error
	router  routers.Router
)

// openAPIRouter loads and validates api/openapi.json once.
func openAPIRouter(t *testing.T) routers.Router {
	t.Helper()
	docOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(api.OpenAPI)
		if err != nil {
			docErr = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			docErr = fmt.Errorf("openapi.json is not a valid OpenAPI 3 document: %w", err)
			return
		}
		doc.Servers = nil // match requests to any test server by path
		router, docErr = legacy.NewRouter(doc)
	})
	if docErr != nil {
		t.Fatal(docErr)
	}
	return router
}

func newExecutor(workers int) (coordinator.Executor, func(), error) {
	eng, err := engine.New(engine.Options{Slots: workers, Threads: 2})
	if err != nil {
		return nil, nil, err
	}
	w := worker.New(eng)
	return w, func() { _ = w.Close(); _ = eng.Close() }, nil
}

type harness struct {
	t   *testing.T
	srv *api.Server
	hs  *httptest.Server
	dir string
}

func newHarness(t *testing.T, dir string, edit func(*api.Config)) *harness {
	t.Helper()
	cfg := api.Config{Token: token, MaxRuns: 2, Workers: 2, NewExecutor: newExecutor}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, hs: httptest.NewServer(srv.Handler()), dir: dir}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		h.hs.Close()
	})
	return h
}

// call sends a request, validates the request (unless it is meant to be
// invalid) and the response against openapi.json, and returns the status
// and body.
func (h *harness) call(method, path string, body any, tok string, validRequest bool) (int, []byte) {
	h.t.Helper()
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			h.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, h.hs.URL+path, bytes.NewReader(data))
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}

	// Validate against the OpenAPI document.
	vreq, _ := http.NewRequest(method, h.hs.URL+path, bytes.NewReader(data))
	vreq.Header = req.Header.Clone()
	route, params, err := openAPIRouter(h.t).FindRoute(vreq)
	if err != nil {
		h.t.Fatalf("%s %s: not in openapi.json: %v", method, path, err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	if validRequest {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			h.t.Errorf("%s %s: request does not match openapi.json: %v", method, path, err)
		}
	}
	if err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(out)), Options: opts,
	}); err != nil {
		h.t.Errorf("%s %s → %d: response does not match openapi.json: %v\n%s", method, path, resp.StatusCode, err, out)
	}
	return resp.StatusCode, out
}

// with is h reporting to the (sub)test t.
func (h *harness) with(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

func (h *harness) do(method, path string, body any) (int, []byte) {
	h.t.Helper()
	return h.call(method, path, body, token, true)
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

type apiErr struct {
	Error struct {
		Code    string   `json:"code"`
		Message string   `json:"message"`
		Details []string `json:"details"`
	} `json:"error"`
}

func (h *harness) submit(body map[string]any, want int) api.Run {
	h.t.Helper()
	code, b := h.do("POST", "/api/v1/runs", body)
	if code != want {
		h.t.Fatalf("submit: %d, want %d: %s", code, want, b)
	}
	return decode[api.Run](h.t, b)
}

func (h *harness) get(id string) api.Run {
	h.t.Helper()
	code, b := h.do("GET", "/api/v1/runs/"+id, nil)
	if code != http.StatusOK {
		h.t.Fatalf("get %s: %d: %s", id, code, b)
	}
	return decode[api.Run](h.t, b)
}

// wait polls a run until cond holds.
func (h *harness) wait(id string, what string, cond func(api.Run) bool) api.Run {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := h.get(id)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run %s: timed out waiting for %s; last: %+v", id, what, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *harness) waitDone(id string) api.Run {
	h.t.Helper()
	return h.wait(id, "the end", func(r api.Run) bool { return r.Result != nil })
}

func duck(t *testing.T, q string) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return db
}

// dataset writes DIR/events: 3 Parquet files of 10000 rows each.
func dataset(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "events"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		duck(t, fmt.Sprintf(`COPY (SELECT i AS event_id, ['US','IL','DE'][1 + i %% 3] AS country, i * 0.5 AS amount
			FROM range(%d, %d) r(i)) TO '%s/events/part-%d.parquet' (FORMAT parquet, ROW_GROUP_SIZE 2048)`,
			i*10000, (i+1)*10000, dir, i)).Close()
	}
	return dir
}

// specFor is an inline spec over dir: pipeline etl copies the events with
// amount > 10 (29979 rows); pipeline slow aggregates a huge cross join.
func specFor(dir string) string {
	return fmt.Sprintf(`name: apitest
sources:
  events: {uri: %[1]s/events}
sinks:
  out: {uri: %[1]s/out/copy/, mode: overwrite}
  slow: {uri: %[1]s/out/slow/, mode: overwrite}
pipelines:
  - pipeline: etl
    tasks:
      - task: copy
        type: sql
        sql: "SELECT event_id, country, amount FROM events WHERE amount > 10"
        sink: out
        partition: {target_rows: 8000}
  - pipeline: checked
    tasks:
      - task: copy
        type: sql
        sql: "SELECT event_id, country, amount FROM events WHERE amount > 10"
        sink: out
        partition: {target_rows: 8000}
        checks:
          - {type: row_count, min: 1000}
          - {type: unique, columns: [event_id]}
  - pipeline: slow
    tasks:
      - task: grind
        type: sql
        sql: "SELECT e.country, count(*) AS n FROM events e, range(200000000) r(i) WHERE r.i %% 7 <> e.event_id %% 5 GROUP BY e.country"
        sink: slow
        partition: {target_rows: 8000}
`, dir)
}

func TestAPIRunLifecycle(t *testing.T) {
	dir := dataset(t)
	h := newHarness(t, dir, nil)
	yml := specFor(dir)

	r := h.submit(map[string]any{"spec": yml, "pipeline": "etl", "run_id": "etl-1"}, http.StatusAccepted)
	if r.ID != "etl-1" || (r.Status != api.StatusQueued && r.Status != api.StatusRunning) || r.Pipeline != "etl" || r.Spec != "apitest" {
		t.Fatalf("submitted run: %+v", r)
	}
	done := h.waitDone("etl-1")
	if done.Status != coordinator.StatusSucceeded || done.Result.Status != coordinator.StatusSucceeded {
		t.Fatalf("run ended %s: %s", done.Status, done.Error)
	}
	res := done.Result
	if len(res.Tasks) != 1 || res.Tasks[0].RowsOut != 29979 || res.Tasks[0].RowsIn != 30000 {
		t.Fatalf("result tasks: %+v", res.Tasks)
	}
	// Progress of the finished run.
	tp := done.Tasks[0]
	if tp.Task != "copy" || tp.Status != coordinator.StatusSucceeded || tp.PartitionsDone != tp.PartitionsTotal ||
		tp.PartitionsTotal < 2 || len(tp.Partitions) != tp.PartitionsTotal || tp.RowsOut != 29979 {
		t.Errorf("task progress: %+v", tp)
	}
	for _, p := range tp.Partitions {
		if p.Status != coordinator.StatusSucceeded || p.Attempts != 1 {
			t.Errorf("partition progress: %+v", p)
		}
	}
	// The committed output.
	db := duck(t, "SELECT 1")
	defer db.Close()
	var n int64
	if err := db.QueryRow(fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/out/copy/*.parquet')", dir)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 29979 {
		t.Errorf("committed rows = %d, want 29979", n)
	}

	t.Run("idempotent run_id", func(t *testing.T) {
		h := h.with(t)
		again := h.submit(map[string]any{"spec": yml, "pipeline": "etl", "run_id": "etl-1"}, http.StatusOK)
		if again.ID != "etl-1" || again.Status != coordinator.StatusSucceeded {
			t.Errorf("resubmitted: %+v", again)
		}
		code, b := h.do("POST", "/api/v1/runs", map[string]any{"spec": yml, "pipeline": "slow", "run_id": "etl-1"})
		if code != http.StatusConflict || decode[apiErr](t, b).Error.Code != "conflict" {
			t.Errorf("same run_id, other request: %d %s", code, b)
		}
	})

	t.Run("logs", func(t *testing.T) {
		h := h.with(t)
		code, b := h.do("GET", "/api/v1/runs/etl-1/logs", nil)
		if code != http.StatusOK {
			t.Fatalf("%d %s", code, b)
		}
		page := decode[struct {
			Lines []map[string]any `json:"lines"`
			Next  int64            `json:"next"`
		}](t, b)
		var msgs []string
		for i, l := range page.Lines {
			if l["seq"] != float64(i+1) {
				t.Errorf("line %d has seq %v", i, l["seq"])
			}
			msgs = append(msgs, fmt.Sprint(l["msg"]))
		}
		all := strings.Join(msgs, "|")
		for _, want := range []string{"run submitted", "run started", "task committed", "run succeeded"} {
			if !strings.Contains(all, want) {
				t.Errorf("logs lack %q: %s", want, all)
			}
		}
		if page.Next != int64(len(page.Lines)) {
			t.Errorf("next = %d, want %d", page.Next, len(page.Lines))
		}
		code, b = h.do("GET", fmt.Sprintf("/api/v1/runs/etl-1/logs?since=%d", page.Next), nil)
		if rest := decode[struct {
			Lines []any `json:"lines"`
		}](t, b); code != http.StatusOK || len(rest.Lines) != 0 {
			t.Errorf("logs since next: %d %s", code, b)
		}
		code, b = h.do("GET", "/api/v1/runs/etl-1/logs?since=2&limit=1", nil)
		if one := decode[struct {
			Lines []map[string]any `json:"lines"`
			Next  int64            `json:"next"`
		}](t, b); code != http.StatusOK || len(one.Lines) != 1 || one.Lines[0]["seq"] != float64(3) || one.Next != 3 {
			t.Errorf("logs since=2 limit=1: %d %s", code, b)
		}
		if code, b := h.call("GET", "/api/v1/runs/etl-1/logs?since=-1", nil, token, false); code != http.StatusBadRequest {
			t.Errorf("since=-1: %d %s", code, b)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		h := h.with(t)
		code, b := h.do("GET", "/metrics", nil)
		if code != http.StatusOK {
			t.Fatalf("%d %s", code, b)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("parse /metrics: %v", err)
		}
		checks := map[string]struct {
			labels map[string]string
			want   float64
		}{
			"liminal_runs_total":          {map[string]string{"pipeline": "etl", "status": "succeeded"}, 1},
			"liminal_rows_in_total":       {map[string]string{"pipeline": "etl", "task": "copy"}, float64(res.Tasks[0].RowsIn)},
			"liminal_rows_out_total":      {map[string]string{"pipeline": "etl", "task": "copy"}, float64(res.Tasks[0].RowsOut)},
			"liminal_bytes_written_total": {map[string]string{"pipeline": "etl", "task": "copy"}, float64(res.Tasks[0].BytesOut)},
			"liminal_partitions_total":    {map[string]string{"pipeline": "etl", "task": "copy", "status": "succeeded"}, float64(res.Tasks[0].Partitions)},
			"liminal_active_runs":         {map[string]string{"pipeline": "etl"}, 0},
			"liminal_worker_slots_busy":   {nil, 0},
		}
		for name, c := range checks {
			if got := sample(fams, name, c.labels); got != c.want {
				t.Errorf("%s%v = %v, want %v", name, c.labels, got, c.want)
			}
		}
		for _, name := range []string{"liminal_run_duration_seconds", "liminal_partition_duration_seconds"} {
			if got := sample(fams, name, map[string]string{"pipeline": "etl"}); got < 1 {
				t.Errorf("%s has %v samples", name, got)
			}
		}
	})

	t.Run("cancel finished", func(t *testing.T) {
		h := h.with(t)
		code, b := h.do("POST", "/api/v1/runs/etl-1/cancel", nil)
		if code != http.StatusConflict || decode[apiErr](t, b).Error.Code != "conflict" {
			t.Errorf("cancel a finished run: %d %s", code, b)
		}
	})

	t.Run("list", func(t *testing.T) {
		h := h.with(t)
		h.submit(map[string]any{"spec": yml, "pipeline": "etl", "run_id": "etl-2"}, http.StatusAccepted)
		h.waitDone("etl-2")
		list := func(q string) []string {
			code, b := h.do("GET", "/api/v1/runs"+q, nil)
			if code != http.StatusOK {
				t.Fatalf("list %s: %d %s", q, code, b)
			}
			var ids []string
			for _, r := range decode[struct{ Runs []api.Run }](t, b).Runs {
				ids = append(ids, r.ID)
				if len(r.Tasks) > 0 && r.Tasks[0].Partitions != nil || r.Result != nil {
					t.Errorf("list shows partitions or result of %s", r.ID)
				}
			}
			return ids
		}
		tests := map[string]struct{ query, want string }{
			"all newest first": {"", "etl-2,etl-1"},
			"by pipeline":      {"?pipeline=etl", "etl-2,etl-1"},
			"other pipeline":   {"?pipeline=slow", ""},
			"by status":        {"?status=succeeded&limit=1", "etl-2"},
			"no failed":        {"?status=failed", ""},
		}
		for name, tc := range tests {
			if got := strings.Join(list(tc.query), ","); got != tc.want {
				t.Errorf("%s: %q, want %q", name, got, tc.want)
			}
		}
		if code, b := h.call("GET", "/api/v1/runs?status=bogus", nil, token, false); code != http.StatusBadRequest {
			t.Errorf("status=bogus: %d %s", code, b)
		}
		if code, b := h.call("GET", "/api/v1/runs?limit=0", nil, token, false); code != http.StatusBadRequest {
			t.Errorf("limit=0: %d %s", code, b)
		}
	})
}

func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

func TestAPICancel(t *testing.T) {
	dir := dataset(t)
	h := newHarness(t, dir, func(c *api.Config) { c.MaxRuns = 1 })
	yml := specFor(dir)
	h.submit(map[string]any{"spec": yml, "pipeline": "slow", "run_id": "slow-1", "workers": 2}, http.StatusAccepted)
	queued := h.submit(map[string]any{"spec": yml, "pipeline": "etl", "run_id": "queued-1"}, http.StatusAccepted)
	if queued.Status != api.StatusQueued {
		t.Errorf("second run with MaxRuns 1: %s, want queued", queued.Status)
	}
	running := h.wait("slow-1", "a running partition", func(r api.Run) bool {
		for _, tp := range r.Tasks {
			for _, p := range tp.Partitions {
				if p.Status == api.StatusRunning {
					return true
				}
			}
		}
		return false
	})
	if running.Status != api.StatusRunning || running.StartedAt == nil || running.Tasks[0].PartitionsTotal == 0 {
		t.Errorf("running run: %+v", running)
	}

	// Cancel the queued run: it never starts.
	code, b := h.do("POST", "/api/v1/runs/queued-1/cancel", nil)
	if r := decode[api.Run](t, b); code != http.StatusAccepted || r.Status != coordinator.StatusCancelled {
		t.Errorf("cancel queued: %d %s", code, b)
	}
	// A long poll on the running run, answered when it ends (cancelled
	// below), not when its minute is up.
	type answer struct {
		code int
		body []byte
	}
	polled := make(chan answer, 1)
	go func() {
		code, b := h.do("GET", "/api/v1/runs/slow-1?wait=1m", nil)
		polled <- answer{code, b}
	}()
	// Cancel the running one.
	start := time.Now()
	if code, b := h.do("POST", "/api/v1/runs/slow-1/cancel", nil); code != http.StatusAccepted {
		t.Fatalf("cancel running: %d %s", code, b)
	}
	select {
	case a := <-polled:
		if r := decode[api.Run](t, a.body); a.code != http.StatusOK || r.Status != coordinator.StatusCancelled || r.Result == nil {
			t.Errorf("long poll: %d %s", a.code, a.body)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the long poll was not answered when the run ended")
	}
	r := h.waitDone("slow-1")
	if r.Status != coordinator.StatusCancelled || r.Result.ExitCode != 1 {
		t.Errorf("cancelled run ended %s (exit %d): %s", r.Status, r.Result.ExitCode, r.Error)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("cancellation took %s", d)
	}
	if _, err := os.Stat(filepath.Join(dir, "out/slow")); err == nil {
		entries, _ := os.ReadDir(filepath.Join(dir, "out/slow"))
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				t.Errorf("cancelled run left output %s", e.Name())
			}
		}
	}
	if q := h.get("queued-1"); q.StartedAt != nil || q.Status != coordinator.StatusCancelled {
		t.Errorf("cancelled queued run: %+v", q)
	}
}

func TestAPIErrors(t *testing.T) {
	dir := dataset(t)
	registered := filepath.Join(dir, "registered.yml")
	if err := os.WriteFile(registered, []byte(specFor(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, dir, func(c *api.Config) { c.Specs = map[string]string{"apitest": registered} })

	t.Run("auth", func(t *testing.T) {
		h := h.with(t)
		for name, tok := range map[string]string{"no token": "", "wrong token": "nope", "prefix of token": token[:4]} {
			for _, path := range []string{"/api/v1/runs", "/api/v1/runs/x", "/api/v1/openapi.json"} {
				code, b := h.call("GET", path, nil, tok, false)
				if code != http.StatusUnauthorized || decode[apiErr](t, b).Error.Code != "unauthorized" {
					t.Errorf("%s %s: %d %s", name, path, code, b)
				}
			}
		}
		// Open as documented: Prometheus scrapes /metrics without a token.
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			if code, b := h.call("GET", path, nil, "", true); code != http.StatusOK {
				t.Errorf("%s without token: %d %s", path, code, b)
			}
		}
		if code, b := h.do("GET", "/api/v1/openapi.json", nil); code != http.StatusOK || !bytes.Equal(b, api.OpenAPI) {
			t.Errorf("openapi.json: %d", code)
		}
	})

	t.Run("not found", func(t *testing.T) {
		h := h.with(t)
		for _, path := range []string{"/api/v1/runs/nope", "/api/v1/runs/nope/logs"} {
			code, b := h.do("GET", path, nil)
			if code != http.StatusNotFound || decode[apiErr](t, b).Error.Code != "not_found" {
				t.Errorf("%s: %d %s", path, code, b)
			}
		}
		if code, b := h.do("POST", "/api/v1/runs/nope/cancel", nil); code != http.StatusNotFound {
			t.Errorf("cancel unknown: %d %s", code, b)
		}
	})

	t.Run("invalid spec", func(t *testing.T) {
		h := h.with(t)
		bad := strings.Replace(specFor(dir), "sink: out", "sink: outt", 1)
		code, b := h.do("POST", "/api/v1/runs", map[string]any{"spec": bad, "pipeline": "etl"})
		e := decode[apiErr](t, b)
		if code != http.StatusBadRequest || e.Error.Code != "invalid_spec" || len(e.Error.Details) != 1 ||
			!strings.HasPrefix(e.Error.Details[0], "inline.yml:13: pipelines[0].tasks[0].sink: unknown sink \"outt\"") {
			t.Errorf("invalid spec: %d %s", code, b)
		}
		code, b = h.do("POST", "/api/v1/runs", map[string]any{"spec": "name: [unclosed", "pipeline": "etl"})
		if e := decode[apiErr](t, b); code != http.StatusBadRequest || e.Error.Code != "invalid_spec" ||
			len(e.Error.Details) == 0 || !strings.HasPrefix(e.Error.Details[0], "inline.yml:") {
			t.Errorf("YAML syntax error: %d %s", code, b)
		}
		code, b = h.do("POST", "/api/v1/runs", map[string]any{"spec": specFor(dir)})
		if e := decode[apiErr](t, b); code != http.StatusBadRequest || e.Error.Code != "invalid_spec" {
			t.Errorf("no pipeline of two: %d %s", code, b)
		}
		code, b = h.do("POST", "/api/v1/runs", map[string]any{"spec_name": "nope"})
		if e := decode[apiErr](t, b); code != http.StatusBadRequest || e.Error.Code != "invalid_spec" ||
			strings.Join(e.Error.Details, ",") != "apitest" {
			t.Errorf("unknown spec_name: %d %s", code, b)
		}
	})

	t.Run("bad wait", func(t *testing.T) {
		h := h.with(t)
		for _, w := range []string{"soon", "-1s", "10"} {
			code, b := h.call("GET", "/api/v1/runs/nope?wait="+w, nil, token, false)
			if code != http.StatusBadRequest || decode[apiErr](t, b).Error.Code != "bad_request" {
				t.Errorf("wait=%s: %d %s", w, code, b)
			}
		}
	})

	t.Run("bad request", func(t *testing.T) {
		h := h.with(t)
		tests := map[string]any{
			"neither spec":   map[string]any{"pipeline": "etl"},
			"both specs":     map[string]any{"spec": "x", "spec_name": "apitest"},
			"bad run_id":     map[string]any{"spec_name": "apitest", "run_id": "../etc"},
			"negative rows":  map[string]any{"spec_name": "apitest", "target_rows": -1},
			"unknown field":  map[string]any{"spec_name": "apitest", "colour": "red"},
			"not an object":  []int{1},
			"too many slots": map[string]any{"spec_name": "apitest", "workers": 5000},
		}
		for name, body := range tests {
			code, b := h.call("POST", "/api/v1/runs", body, token, false)
			if code != http.StatusBadRequest || decode[apiErr](t, b).Error.Code != "bad_request" {
				t.Errorf("%s: %d %s", name, code, b)
			}
		}
	})

	t.Run("registered spec", func(t *testing.T) {
		h := h.with(t)
		r := h.submit(map[string]any{"spec_name": "apitest", "pipeline": "etl", "target_rows": 5000}, http.StatusAccepted)
		if r.SpecName != "apitest" || r.TargetRows != 5000 || !strings.HasPrefix(r.ID, "20") {
			t.Errorf("run: %+v", r)
		}
		done := h.waitDone(r.ID)
		if done.Status != coordinator.StatusSucceeded || done.Result.Spec != registered || done.Result.Tasks[0].Partitions < 6 {
			t.Errorf("run of a registered spec: %s %s %+v", done.Status, done.Error, done.Result)
		}
	})

	t.Run("failed run", func(t *testing.T) {
		h := h.with(t)
		bad := strings.Replace(specFor(dir), "FROM events WHERE", "FROM events WHERE no_such_column > 1 AND", 1)
		r := h.submit(map[string]any{"spec": bad, "pipeline": "etl"}, http.StatusAccepted)
		done := h.waitDone(r.ID)
		if done.Status != coordinator.StatusFailed || done.Result.ExitCode != 2 || !strings.Contains(done.Error, "no_such_column") {
			t.Errorf("run with bad SQL: %s exit %d: %s", done.Status, done.Result.ExitCode, done.Error)
		}
		if len(done.Tasks) != 1 || len(done.Tasks[0].Errors) == 0 {
			t.Errorf("task errors: %+v", done.Tasks)
		}
	})

	t.Run("method not allowed", func(t *testing.T) {
		h := h.with(t)
		req, _ := http.NewRequest("DELETE", h.hs.URL+"/api/v1/runs", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || decode[apiErr](t, b).Error.Code != "method_not_allowed" {
			t.Errorf("DELETE /api/v1/runs: %d %s", resp.StatusCode, b)
		}
	})
}

func TestAPIStateAndShutdown(t *testing.T) {
	dir := dataset(t)
	state := filepath.Join(dir, "state")
	yml := specFor(dir)
	h := newHarness(t, dir, func(c *api.Config) { c.StateDir = state })
	h.submit(map[string]any{"spec": yml, "pipeline": "etl", "run_id": "kept"}, http.StatusAccepted)
	h.waitDone("kept")
	h.submit(map[string]any{"spec": yml, "pipeline": "slow", "run_id": "long"}, http.StatusAccepted)
	h.wait("long", "running", func(r api.Run) bool { return r.Status == api.StatusRunning })

	// Shutdown: readiness 503, new runs refused, the running run cancelled
	// after the grace period.
	shut := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_ = h.srv.Shutdown(ctx)
		close(shut)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !h.srv.Draining() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if code, b := h.call("GET", "/readyz", nil, "", true); code != http.StatusServiceUnavailable {
		t.Errorf("readyz while shutting down: %d %s", code, b)
	}
	if code, b := h.do("GET", "/healthz", nil); code != http.StatusOK {
		t.Errorf("healthz while shutting down: %d %s", code, b)
	}
	code, b := h.do("POST", "/api/v1/runs", map[string]any{"spec": yml, "pipeline": "etl"})
	if code != http.StatusServiceUnavailable || decode[apiErr](t, b).Error.Code != "unavailable" {
		t.Errorf("submit while shutting down: %d %s", code, b)
	}
	select {
	case <-shut:
	case <-time.After(30 * time.Second):
		t.Fatal("shutdown did not cancel the running run")
	}
	if r := h.get("long"); r.Status != coordinator.StatusCancelled {
		t.Errorf("run at shutdown: %s", r.Status)
	}

	// A run left "running" by a crashed process is failed at restart.
	crashed := `{"fingerprint": "x", "run": {"id": "crashed", "status": "running", "spec": "apitest", "pipeline": "etl",
		"workers": 1, "created_at": "2026-01-02T03:04:05Z", "started_at": "2026-01-02T03:04:06Z", "tasks": [
		{"task": "copy", "status": "running", "partitions_total": 2, "partitions_done": 1, "rows_total": 10,
		 "rows_in": 5, "rows_out": 5, "retries": 0, "errors": [], "partitions": [{"id": "a", "status": "running", "attempts": 1, "rows_in": 0, "rows_out": 0}]}]}}`
	if err := os.WriteFile(filepath.Join(state, "runs", "crashed.json"), []byte(crashed), 0o644); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, dir, func(c *api.Config) { c.StateDir = state })
	code, b = h2.do("GET", "/api/v1/runs", nil)
	var ids []string
	for _, r := range decode[struct{ Runs []api.Run }](t, b).Runs {
		ids = append(ids, r.ID+"="+r.Status)
	}
	if got := strings.Join(ids, ","); code != http.StatusOK || got != "long=cancelled,kept=succeeded,crashed=failed" {
		t.Errorf("runs after restart: %d %s", code, got)
	}
	c := h2.get("crashed")
	if c.Error != "coordinator restarted" || c.Result == nil || c.Result.Status != coordinator.StatusFailed ||
		c.Tasks[0].Status != coordinator.StatusFailed || c.Tasks[0].Partitions[0].Status != coordinator.StatusFailed {
		t.Errorf("crashed run after restart: %+v", c)
	}
	if k := h2.get("kept"); k.Result == nil || k.Result.Tasks[0].RowsOut != 29979 {
		t.Errorf("kept run after restart: %+v", k)
	}
	// The restarted server keeps run_id idempotency.
	h2.submit(map[string]any{"spec": yml, "pipeline": "etl", "run_id": "kept"}, http.StatusOK)
}

// Data checks run through the API's executor wrappers too.
func TestAPIChecks(t *testing.T) {
	dir := dataset(t)
	h := newHarness(t, dir, nil)
	h.submit(map[string]any{"spec": specFor(dir), "pipeline": "checked", "run_id": "checked-1"}, http.StatusAccepted)
	done := h.waitDone("checked-1")
	if done.Status != coordinator.StatusSucceeded {
		t.Fatalf("run ended %s: %s", done.Status, done.Error)
	}
	if n := len(done.Result.Tasks[0].Checks); n != 2 {
		t.Errorf("%d check results, want 2: %+v", n, done.Result.Tasks[0].Checks)
	}
}
