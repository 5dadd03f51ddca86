package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestSingleCSVJoinsParts: a partition-local query into one CSV file runs
// without a gathering final stage (each partition writes its part, the
// commit joins them under one header), and the file equals DuckDB's answer
// over the whole input — header names with the delimiter, quotes and a
// newline, partitions that keep no row, a custom delimiter.
func TestSingleCSVJoinsParts(t *testing.T) {
	dir := workspace(t)
	q := `SELECT event_id AS "id, ""quoted""", country AS "multi
line", amount FROM events WHERE event_id % 7 <> 0 AND (event_id < 4000 OR event_id >= 21000)`
	r := liminal(t, dir, "sql", q, "--source", "events=data/events", "--sink", "out/all.csv", "--target-rows", "2048", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var res struct {
		Tasks []struct {
			Partitions int    `json:"partitions"`
			Attempts   int    `json:"attempts"`
			Plan       string `json:"plan"`
			RowsOut    int64  `json:"rows_out"`
		} `json:"tasks"`
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if len(res.Tasks) != 1 || res.Tasks[0].Partitions < 10 || res.Tasks[0].Plan != "local" {
		t.Fatalf("want one local task of many partitions: %s", lines[len(lines)-1])
	}
	// No final stage: one attempt per partition (a gathering final stage is
	// one attempt more).
	if tk := res.Tasks[0]; tk.Attempts != tk.Partitions {
		t.Errorf("%d attempts for %d partitions: a final stage ran", tk.Attempts, tk.Partitions)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out/all.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(got), `"id, ""quoted"""`); n != 1 {
		t.Errorf("header appears %d times", n)
	}
	// The same query by DuckDB alone, written by DuckDB, compared as sets of
	// lines after the header (partition order is the split order).
	want := filepath.Join(dir, "want.csv")
	duck(t, fmt.Sprintf("COPY (%s) TO '%s' (FORMAT csv, HEADER true)", strings.ReplaceAll(q, "events", fmt.Sprintf("read_parquet('%s/data/events/*.parquet')", dir)), want))
	wb, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := sortedLines(string(got)), sortedLines(string(wb)); a != b {
		t.Errorf("joined file differs from DuckDB's answer (%d vs %d bytes)", len(got), len(wb))
	}
	if int64(strings.Count(string(wb), "\n")-2) != res.Tasks[0].RowsOut {
		t.Errorf("rows_out %d, DuckDB %d lines", res.Tasks[0].RowsOut, strings.Count(string(wb), "\n")-2)
	}

	// A custom delimiter, through a spec.
	spec := fmt.Sprintf(`name: semi
sources:
  events: {uri: data/events}
sinks:
  out: {uri: out/semi.csv, options: {delim: ";"}}
pipelines:
  - pipeline: semi
    tasks:
      - {task: t, type: sql, sql: %q, sink: out, partition: {by: row_groups, target_rows: 2048}}
`, "SELECT event_id, country AS \"a;b\" FROM events")
	if err := os.WriteFile(filepath.Join(dir, "semi.yml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := liminal(t, dir, "run", "semi.yml"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	semi, err := os.ReadFile(filepath.Join(dir, "out/semi.csv"))
	if err != nil {
		t.Fatal(err)
	}
	ls := strings.Split(strings.TrimSpace(string(semi)), "\n")
	if ls[0] != `event_id;"a;b"` || len(ls) != 30001 || strings.Count(string(semi), `"a;b"`) != 1 {
		t.Errorf("semicolon file: %d lines, header %q", len(ls), ls[0])
	}
}

// sortedLines is the file's header and its other lines sorted.
func sortedLines(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) < 2 {
		return s
	}
	// The header of this test spans two lines (a quoted newline).
	head, rest := ls[:2], ls[2:]
	sort.Strings(rest)
	return strings.Join(append(head, rest...), "\n")
}
