package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestRunPushesMetrics: a one-shot run pushes its figures to a Pushgateway
// (here a recording HTTP server) in the Prometheus text format.
func TestRunPushesMetrics(t *testing.T) {
	var mu sync.Mutex
	var path, body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		path, body = r.Method+" "+r.URL.Path, string(b)
		mu.Unlock()
	}))
	defer srv.Close()
	dir := workspace(t)
	spec := writeSpec(t, dir, fmt.Sprintf(specTemplate, "data/events", "out/", `"SELECT * FROM events WHERE amount > 100"`))
	r := liminal(t, dir, "run", spec, "--pushgateway", srv.URL)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if path != "PUT /metrics/job/liminal" {
		t.Fatalf("pushed to %q", path)
	}
	for _, want := range []string{`liminal_runs_total{pipeline="p",status="succeeded"} 1`, `liminal_rows_in_total`, `liminal_partitions_total`} {
		if !strings.Contains(body, want) {
			t.Fatalf("push lacks %s:\n%s", want, body)
		}
	}
}
