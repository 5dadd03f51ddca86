package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestRunAlerts: a run whose data check fails alerts the webhook (failure
// and check_failure, as JSON) and the Slack-compatible hook (a message);
// a successful run alerts only who asked for success.
func TestRunAlerts(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[r.URL.Path] = append(got[r.URL.Path], string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	dir := workspace(t)
	spec := `name: alerts
sources:
  events: {uri: data/events}
sinks:
  out: {uri: out/, mode: overwrite}
pipelines:
  - pipeline: p
    sla: 1h
    alerts:
      - {name: hook, on: [failure, check_failure, success], webhook: {url: "URL/hook", headers: {Authorization: "Bearer s3cret"}}}
      - {name: chat, on: [failure], slack: {url: "URL/slack"}}
    tasks:
      - task: t
        type: sql
        sql: SELECT event_id FROM events
        sink: out
        checks: [{type: row_count, max: MAX}]
`
	spec = strings.ReplaceAll(spec, "URL", srv.URL)
	r := liminal(t, dir, "run", writeSpec(t, dir, strings.Replace(spec, "MAX", "10", 1)))
	if r.code != 1 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	mu.Lock()
	hooks, slack := got["/hook"], got["/slack"]
	mu.Unlock()
	if len(hooks) != 2 || len(slack) != 1 {
		t.Fatalf("webhook got %d posts, slack %d: %v", len(hooks), len(slack), got)
	}
	kinds := map[string]bool{}
	for _, h := range hooks {
		var ev map[string]any
		if err := json.Unmarshal([]byte(h), &ev); err != nil {
			t.Fatalf("webhook body %q: %v", h, err)
		}
		kinds[ev["kind"].(string)] = true
		if ev["pipeline"] != "p" || !strings.Contains(ev["error"].(string), "data checks failed") {
			t.Fatalf("event %v", ev)
		}
	}
	if !kinds["failure"] || !kinds["check_failure"] {
		t.Fatalf("kinds %v", kinds)
	}
	if !strings.Contains(slack[0], `"text"`) || !strings.Contains(slack[0], "failed") {
		t.Fatalf("slack body %s", slack[0])
	}
	if strings.Contains(r.stderr, "s3cret") {
		t.Fatalf("secret header in logs")
	}

	mu.Lock()
	got = map[string][]string{}
	mu.Unlock()
	r = liminal(t, dir, "run", writeSpec(t, dir, strings.Replace(spec, "MAX", "100000", 1)))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got["/hook"]) != 1 || !strings.Contains(got["/hook"][0], `"kind":"success"`) || len(got["/slack"]) != 0 {
		t.Fatalf("after success: %v", got)
	}
}
