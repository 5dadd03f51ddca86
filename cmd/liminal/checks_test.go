package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDataChecks: checks run on the staged output before commit; a failed
// warning is reported and the output committed; a failed error check fails
// the task and leaves the earlier output untouched.
func TestDataChecks(t *testing.T) {
	dir := workspace(t)
	body := `name: checks
sources:
  events: {uri: data/events}
  customers: {uri: data/customers}
sinks:
  out: {uri: out/, mode: overwrite}
pipelines:
  - pipeline: p
    tasks:
      - task: t
        type: sql
        sql: SELECT event_id, customer_id, country, amount FROM events
        sources: [events]
        sink: out
        partition: {target_rows: 8000}
        checks:
          - {type: row_count, min: 1000, max: 30000}
          - {type: not_null, columns: [event_id, country]}
          - {type: unique, columns: [event_id]}
          - {type: relationships, columns: [customer_id], to: customers, field: customer_id}
          - {type: accepted_values, columns: [country], values: [US, IL], severity: warn}
          - {type: sql, name: no_negative, sql: "SELECT * FROM output WHERE amount < 0"}
EXTRA
`
	spec := writeSpec(t, dir, strings.Replace(body, "EXTRA", "", 1))
	r := liminal(t, dir, "run", spec, "--json", "--run-id", "c1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{`"name":"accepted_values(country)","type":"accepted_values","severity":"warn","passed":false`,
		`"name":"unique(event_id)","type":"unique","severity":"error","passed":true`, `"name":"no_negative"`} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("result lacks %s:\n%s", want, r.stdout)
		}
	}
	before := tree(t, filepath.Join(dir, "out"))
	spec = writeSpec(t, dir, strings.Replace(body, "EXTRA", "          - {type: row_count, max: 10}\n          - {type: accepted_values, columns: [country], values: [US]}", 1))
	r = liminal(t, dir, "run", spec, "--run-id", "c2")
	if r.code != 1 || !strings.Contains(r.stderr, "data checks failed, nothing committed") || !strings.Contains(r.stderr, "row_count") {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	if after := tree(t, filepath.Join(dir, "out")); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("failed checks changed the output:\nbefore %v\nafter %v", before, after)
	}
}
