package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liminal-data/liminal/spec"
)

// logBuffer collects log output from many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testOptions are fast retries with logs kept in buf.
func testOptions(buf *logBuffer) Options {
	return Options{
		Logger:      slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MaxAttempts: 5,
		Backoff:     time.Millisecond,
		MaxBackoff:  5 * time.Millisecond,
		Timeout:     5 * time.Second,
	}
}

// sampleEvent is a failed run with a failed check.
func sampleEvent() Event {
	start := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	return Event{
		Kind:       KindFailure,
		Pipeline:   "nightly",
		RunID:      "20260301T020000-ab12",
		Spec:       "etl.yml",
		Status:     "failed",
		Error:      `task "score": model input "age" <missing> & more`,
		StartedAt:  start,
		FinishedAt: start.Add(12*time.Minute + 3*time.Second),
		Duration:   12*time.Minute + 3*time.Second,
		SLA:        45 * time.Minute,
		Tasks: []TaskSummary{
			{Task: "load", Status: "succeeded", RowsOut: 1234, FailedChecks: []string{"unique(id): 3 duplicate keys, e.g. 42"}},
			{Task: "score", Status: "failed", Error: "model input \"age\" not found"},
		},
	}
}

// receiver is an HTTP endpoint answering with the given statuses in turn
// (the last one repeated) and recording the requests.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
	headers  []http.Header
	srv      *httptest.Server
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		i := min(len(r.bodies), len(r.statuses)-1)
		r.bodies = append(r.bodies, body)
		r.headers = append(r.headers, req.Header.Clone())
		code := r.statuses[i]
		r.mu.Unlock()
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(code)
		io.WriteString(w, http.StatusText(code))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// closeWithin closes n, failing the test if it reports drops.
func closeWithin(t *testing.T, n *Notifier, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// noLeaks fails t if more goroutines run than before, once things settle.
func noLeaks(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestWebhook(t *testing.T) {
	before := runtime.NumGoroutine()
	rec := newReceiver(t, 200)
	var logs logBuffer
	n := New([]spec.Alert{{
		Name: "ops-hook",
		On:   []string{"failure", "success"},
		Webhook: &spec.Webhook{URL: rec.srv.URL + "/hooks/t0ken-in-path?key=qs3cret", Headers: map[string]string{
			"Authorization": "Bearer h3ader-secret",
			"X-Team":        "data",
		}},
	}}, testOptions(&logs))
	n.Notify(sampleEvent())
	closeWithin(t, n, 5*time.Second)

	if rec.requests() != 1 {
		t.Fatalf("got %d requests, want 1", rec.requests())
	}
	h := rec.headers[0]
	if h.Get("Content-Type") != "application/json" || h.Get("Authorization") != "Bearer h3ader-secret" || h.Get("X-Team") != "data" {
		t.Errorf("headers: %v", h)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"kind": "failure", "pipeline": "nightly", "run_id": "20260301T020000-ab12", "spec": "etl.yml",
		"status": "failed", "duration_ms": float64(723000), "sla_ms": float64(2700000),
		"started_at": "2026-03-01T02:00:00Z", "finished_at": "2026-03-01T02:12:03Z",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	tasks, _ := got["tasks"].([]any)
	if len(tasks) != 2 {
		t.Fatalf("tasks: %v", got["tasks"])
	}
	load := tasks[0].(map[string]any)
	if load["task"] != "load" || load["rows_out"] != float64(1234) || load["failed_checks"].([]any)[0] != "unique(id): 3 duplicate keys, e.g. 42" {
		t.Errorf("task: %v", load)
	}
	if s := n.Stats()[ChannelWebhook]; s != (ChannelStats{Sent: 1}) {
		t.Errorf("stats %+v", s)
	}
	l := logs.String()
	if !strings.Contains(l, `"msg":"alert sent"`) || !strings.Contains(l, `"alert":"ops-hook"`) {
		t.Errorf("logs: %s", l)
	}
	for _, secret := range []string{"t0ken-in-path", "qs3cret", "h3ader-secret"} {
		if strings.Contains(l, secret) {
			t.Errorf("logs show %s: %s", secret, l)
		}
	}
	rec.srv.Close()
	noLeaks(t, before)
}

func TestSlack(t *testing.T) {
	rec := newReceiver(t, 200)
	var logs logBuffer
	n := New([]spec.Alert{{Slack: &spec.Webhook{URL: rec.srv.URL + "/services/T0/B0/XYZ"}}}, testOptions(&logs))
	n.Notify(sampleEvent())
	closeWithin(t, n, 5*time.Second)
	if rec.requests() != 1 {
		t.Fatalf("got %d requests", rec.requests())
	}
	var msg map[string]string
	if err := json.Unmarshal(rec.bodies[0], &msg); err != nil || len(msg) != 1 {
		t.Fatalf("body %s: %v", rec.bodies[0], err)
	}
	want := ":red_circle: *liminal:* nightly failed (run 20260301T020000-ab12)\n" +
		"*Pipeline:* nightly\n" +
		"*Run:* `20260301T020000-ab12`\n" +
		"*Status:* failed\n" +
		"*Error:* task \"score\": model input \"age\" &lt;missing&gt; &amp; more\n" +
		"*Duration:* 12m3s (SLA 45m0s)\n" +
		"*Failed checks:*\n" +
		"• load: unique(id): 3 duplicate keys, e.g. 42"
	if msg["text"] != want {
		t.Errorf("text:\n%s\nwant:\n%s", msg["text"], want)
	}
	if !strings.Contains(logs.String(), `"alert":"slack#1"`) {
		t.Errorf("default name missing from logs: %s", logs.String())
	}
}

func TestRetries(t *testing.T) {
	tests := map[string]struct {
		statuses              []int
		requests              int
		sent, failed, retried int64
		logLike               string
	}{
		"503 then 200":               {statuses: []int{503, 200}, requests: 2, sent: 1, retried: 1, logLike: "HTTP 503"},
		"429 then 200":               {statuses: []int{429, 429, 200}, requests: 3, sent: 1, retried: 2},
		"gives up after MaxAttempts": {statuses: []int{500}, requests: 5, failed: 1, retried: 4, logLike: `"attempt":5`},
		"400 not retried":            {statuses: []int{400}, requests: 1, failed: 1, logLike: `"permanent":true`},
		"404 not retried":            {statuses: []int{404, 200}, requests: 1, failed: 1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			rec := newReceiver(t, tt.statuses...)
			var logs logBuffer
			n := New([]spec.Alert{{Name: "a", Slack: &spec.Webhook{URL: rec.srv.URL + "/services/SECRET"}}}, testOptions(&logs))
			n.Notify(sampleEvent())
			closeWithin(t, n, 5*time.Second)
			if rec.requests() != tt.requests {
				t.Errorf("requests = %d, want %d", rec.requests(), tt.requests)
			}
			want := ChannelStats{Sent: tt.sent, Failed: tt.failed, Retried: tt.retried}
			if s := n.Stats()[ChannelSlack]; s != want {
				t.Errorf("stats = %+v, want %+v", s, want)
			}
			l := logs.String()
			if !strings.Contains(l, tt.logLike) || strings.Contains(l, "SECRET") {
				t.Errorf("logs (want %q, no secret): %s", tt.logLike, l)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/hook/s3cret"
	ln.Close()
	var logs logBuffer
	opts := testOptions(&logs)
	opts.MaxAttempts = 3
	n := New([]spec.Alert{{Webhook: &spec.Webhook{URL: url}}}, opts)
	n.Notify(sampleEvent())
	closeWithin(t, n, 5*time.Second)
	if s := n.Stats()[ChannelWebhook]; s != (ChannelStats{Failed: 1, Retried: 2}) {
		t.Errorf("stats %+v", s)
	}
	if l := logs.String(); !strings.Contains(l, "connection refused") || strings.Contains(l, "s3cret") {
		t.Errorf("logs: %s", l)
	}
}

func TestOn(t *testing.T) {
	rec := newReceiver(t, 200)
	n := New([]spec.Alert{
		{Name: "default", Webhook: &spec.Webhook{URL: rec.srv.URL + "/default"}},
		{Name: "sla", On: []string{"sla_miss", "check_failure"}, Webhook: &spec.Webhook{URL: rec.srv.URL + "/sla"}},
	}, Options{Backoff: time.Millisecond})
	for _, kind := range []string{KindSuccess, KindFailure, KindSLAMiss, KindCheckFailure, KindSuccess} {
		ev := sampleEvent()
		ev.Kind = kind
		n.Notify(ev)
	}
	closeWithin(t, n, 5*time.Second)
	var kinds []string
	for _, b := range rec.bodies {
		var ev map[string]any
		json.Unmarshal(b, &ev)
		kinds = append(kinds, ev["kind"].(string))
	}
	// One worker per alert: the order between the two alerts varies.
	if len(kinds) != 3 || strings.Count(strings.Join(kinds, ","), "failure") != 2 {
		t.Errorf("delivered %v, want failure, sla_miss, check_failure", kinds)
	}
	if s := n.Stats()[ChannelWebhook]; s.Sent != 3 {
		t.Errorf("stats %+v", s)
	}
}

func TestNilNotifier(t *testing.T) {
	var n *Notifier
	n.Notify(sampleEvent())
	if err := n.Close(context.Background()); err != nil || len(n.Stats()) != 0 {
		t.Errorf("nil notifier: %v %v", err, n.Stats())
	}
}

// TestNeverBlocks sends to a receiver that never answers: Notify returns
// at once, Close returns when its context ends, reports the drops, and no
// goroutine is left.
func TestNeverBlocks(t *testing.T) {
	before := runtime.NumGoroutine()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	smtpSrv := newSMTPServer(t, func(s *smtpServer) { s.hang = true })
	var logs logBuffer
	opts := testOptions(&logs)
	opts.QueueSize = 4
	opts.Timeout = time.Minute
	n := New([]spec.Alert{
		{Name: "hook", Webhook: &spec.Webhook{URL: srv.URL}},
		{Name: "mail", Email: &spec.Email{SMTP: smtpSrv.addr(), From: "a@example.com", To: []string{"b@example.com"}}},
	}, opts)
	var slowest time.Duration
	for range 20 {
		start := time.Now()
		n.Notify(sampleEvent())
		slowest = max(slowest, time.Since(start))
	}
	if slowest > 10*time.Millisecond {
		t.Errorf("Notify took %v", slowest)
	}
	time.Sleep(50 * time.Millisecond) // let the first deliveries start
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := n.Close(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if !errors.Is(err, ErrDropped) {
		t.Fatalf("Close = %v, want ErrDropped", err)
	}
	t.Log(err)
	// Per alert: 1 in flight and up to 4 queued are dropped at close, the
	// others at Notify.
	if !strings.Contains(err.Error(), "at close: ") || !strings.Contains(err.Error(), `webhook "hook": failure of run 20260301T020000-ab12, interrupted at attempt 1`) {
		t.Errorf("Close error: %v", err)
	}
	for _, ch := range []string{ChannelWebhook, ChannelEmail} {
		if s := n.Stats()[ch]; s != (ChannelStats{Dropped: 20}) {
			t.Errorf("%s stats %+v", ch, s)
		}
	}
	n.Notify(sampleEvent()) // after Close: dropped, not blocked
	if s := n.Stats()[ChannelWebhook]; s.Dropped != 21 {
		t.Errorf("stats after close %+v", s)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	close(release)
	srv.Close()
	smtpSrv.close()
	noLeaks(t, before)
}

func TestTitle(t *testing.T) {
	tests := map[string]struct {
		ev   Event
		want string
	}{
		"failure":   {Event{Kind: KindFailure, Pipeline: "p", RunID: "r"}, "p failed (run r)"},
		"cancelled": {Event{Kind: KindFailure, Pipeline: "p", RunID: "r", Status: "cancelled"}, "p cancelled (run r)"},
		"success":   {Event{Kind: KindSuccess, Pipeline: "p", RunID: "r"}, "p succeeded (run r)"},
		"sla":       {Event{Kind: KindSLAMiss, Pipeline: "p", RunID: "r", SLA: time.Hour}, "p missed its SLA of 1h0m0s (run r)"},
		"checks":    {Event{Kind: KindCheckFailure, RunID: "r\nx"}, "run failed data checks (run r x)"},
	}
	for name, tt := range tests {
		if got := tt.ev.Title(); got != tt.want {
			t.Errorf("%s: Title = %q, want %q", name, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	n := &Notifier{opts: Options{Backoff: time.Second, MaxBackoff: 30 * time.Second}}
	for attempt, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 40: 30 * time.Second} {
		for range 50 {
			if d := n.backoff(attempt, errors.New("x")); d < base/2 || d > base {
				t.Fatalf("attempt %d: backoff %v outside [%v, %v]", attempt, d, base/2, base)
			}
		}
	}
	if d := n.backoff(1, &statusError{code: 429, retryAfter: 10 * time.Second}); d != 10*time.Second {
		t.Errorf("Retry-After: %v", d)
	}
	if d := n.backoff(1, &statusError{code: 429, retryAfter: time.Hour}); d != 30*time.Second {
		t.Errorf("Retry-After capped: %v", d)
	}
}

func TestRedact(t *testing.T) {
	tests := map[string]string{
		"https://hooks.slack.com/services/T/B/X": "https://hooks.slack.com/…",
		"http://h:8080/?token=x":                 "http://h:8080/…",
		"http://h:8080":                          "http://h:8080",
		"::bad":                                  "(webhook url)",
	}
	for in, want := range tests {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
