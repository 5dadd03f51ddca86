package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPipelineDAG runs a pipeline whose second task reads the first one's
// result (no sink of its own: an intermediate result), next to an
// independent task, and checks the output and that the intermediate result
// is gone afterwards.
func TestPipelineDAG(t *testing.T) {
	dir := workspace(t)
	work := t.TempDir()
	spec := writeSpec(t, dir, `name: dag
sources:
  events: {uri: data/events}
  customers: {uri: data/customers}
sinks:
  by_country: {uri: out/by_country.parquet, mode: overwrite}
  names: {uri: out/names.csv, mode: overwrite}
pipelines:
  - pipeline: p
    tasks:
      - task: enriched
        type: sql
        sql: SELECT e.country, e.amount, c.name FROM events e JOIN customers c USING (customer_id)
        sources: [events, customers]
        partition: {source: events, target_rows: 8000}
      - task: totals
        type: sql
        sql: SELECT country, count(*) AS n, sum(amount) AS amount FROM enriched GROUP BY country
        sources: [enriched]
        depends_on: [enriched]
        sink: by_country
      - task: names
        type: sql
        sql: SELECT DISTINCT name FROM customers
        sources: [customers]
        sink: names
`)
	r := liminal(t, dir, "run", spec, "--workers", "2", "--work-dir", work, "--run-id", "dag1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s\n%s", r.code, r.stdout, r.stderr)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var diff int
	q := fmt.Sprintf(`SELECT count(*) FROM (
		(SELECT country, count(*) AS n, sum(amount) AS amount FROM read_parquet('%[1]s/data/events/*.parquet') GROUP BY country
		 EXCEPT SELECT * FROM read_parquet('%[1]s/out/by_country.parquet'))
		UNION ALL
		(SELECT * FROM read_parquet('%[1]s/out/by_country.parquet')
		 EXCEPT SELECT country, count(*), sum(amount) FROM read_parquet('%[1]s/data/events/*.parquet') GROUP BY country))`, dir)
	if err := db.QueryRow(q).Scan(&diff); err != nil || diff != 0 {
		t.Fatalf("totals differ from DuckDB over the input: %d rows (%v)", diff, err)
	}
	left, _ := filepath.Glob(filepath.Join(work, "liminal-*"))
	if len(left) != 0 {
		t.Fatalf("intermediate results left behind: %v", left)
	}
	if !strings.Contains(r.stdout, "task enriched: succeeded") || !strings.Contains(r.stdout, "task names: succeeded") {
		t.Fatalf("summary:\n%s", r.stdout)
	}
	// plan shows the dependent task without planning it.
	r = liminal(t, dir, "plan", spec)
	if r.code != 0 || !strings.Contains(r.stdout, "task totals: reads the result of task enriched") {
		t.Fatalf("plan: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	_ = os.Remove
}

// TestPipelineDAGFailure: a failing task skips its dependents, an
// independent task still commits, and the run exits 1.
func TestPipelineDAGFailure(t *testing.T) {
	dir := workspace(t)
	spec := writeSpec(t, dir, `name: dag
sources:
  events: {uri: data/events}
  customers: {uri: data/customers}
sinks:
  a: {uri: out/a.csv, mode: overwrite}
  b: {uri: out/b.csv, mode: overwrite}
  c: {uri: out/c.csv, mode: overwrite}
pipelines:
  - pipeline: p
    tasks:
      - task: broken
        type: sql
        sql: SELECT CAST(country AS INTEGER) AS x FROM events
        sources: [events]
        sink: a
      - task: after
        type: sql
        sql: SELECT 1 AS one
        sources: [customers]
        depends_on: [broken]
        sink: b
      - task: independent
        type: sql
        sql: SELECT count(*) AS n FROM customers
        sources: [customers]
        sink: c
`)
	r := liminal(t, dir, "run", spec, "--json")
	if r.code != 1 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{`"task":"broken","status":"failed"`, `"task":"after","status":"skipped"`, `"task":"independent","status":"succeeded"`} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("result lacks %s:\n%s", want, r.stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out/c.csv")); err != nil {
		t.Fatalf("independent output missing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out/b.csv")); err == nil {
		t.Fatalf("skipped task wrote output")
	}
}
