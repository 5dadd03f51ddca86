package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is liminal built once for the tests that need a process (signals).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "liminal-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "liminal")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build liminal: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func liminal(t *testing.T, dir string, args ...string) result {
	t.Helper()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

func duck(t *testing.T, q string) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// workspace makes a directory with data/events (3 parquet files),
// data/customers, data/ragged (CSV) and data/bad (a corrupt parquet file).
func workspace(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"data/events", "data/customers", "data/ragged", "data/bad", "data/trunc", "data/mixed", "sql"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		duck(t, fmt.Sprintf(`COPY (SELECT i AS event_id, CAST(i %% 50 AS INTEGER) AS customer_id, ['US','IL','DE'][1 + i %% 3] AS country,
			i * 0.5 AS amount FROM range(%d, %d) r(i)) TO '%s/data/events/part-%d.parquet' (FORMAT parquet, ROW_GROUP_SIZE 2048)`,
			i*10000, (i+1)*10000, dir, i))
	}
	duck(t, fmt.Sprintf(`COPY (SELECT CAST(i AS INTEGER) AS customer_id, 'c' || i AS name FROM range(50) r(i)) TO '%s/data/customers/c.parquet' (FORMAT parquet)`, dir))
	_ = os.WriteFile(filepath.Join(dir, "data/ragged/a.csv"), []byte("a,b\n1,2\n3,4\n5,6,7\n8,9\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "data/bad/x.parquet"), []byte("PAR1 not really parquet"), 0o644)
	duck(t, fmt.Sprintf(`COPY (SELECT i FROM range(100000) r(i)) TO '%s/data/trunc/x.parquet' (FORMAT parquet)`, dir))
	b, _ := os.ReadFile(filepath.Join(dir, "data/trunc/x.parquet"))
	_ = os.WriteFile(filepath.Join(dir, "data/trunc/x.parquet"), b[:len(b)*2/3], 0o644)
	duck(t, fmt.Sprintf(`COPY (SELECT 1 AS a) TO '%s/data/mixed/1.parquet' (FORMAT parquet)`, dir))
	duck(t, fmt.Sprintf(`COPY (SELECT 'x' AS a) TO '%s/data/mixed/2.parquet' (FORMAT parquet)`, dir))
	return dir
}

func writeSpec(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "spec.yml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const specTemplate = `name: test
sources:
  events: {uri: %s}
  customers: {uri: data/customers}
sinks:
  out: {uri: %s, mode: overwrite}
pipelines:
  - pipeline: p
    tasks:
      - task: t
        type: sql
        sql: %s
        sink: out
        partition: {target_rows: 8000}
`

// tree lists every file and directory under dir (including hidden ones),
// to prove that a failed run leaves nothing behind.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, fmt.Sprintf("%s %d", rel, info.Size()))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestRunJSONResult(t *testing.T) {
	dir := workspace(t)
	spec := writeSpec(t, dir, fmt.Sprintf(specTemplate, "data/events", "out/", `"SELECT e.*, c.name FROM events e JOIN customers c USING (customer_id) WHERE amount > 100"`))
	r := liminal(t, dir, "run", spec, "--json", "--run-id", "r1", "--workers", "2")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var res struct {
		RunID  string `json:"run_id"`
		Status string `json:"status"`
		Tasks  []struct {
			Partitions int   `json:"partitions"`
			RowsIn     int64 `json:"rows_in"`
			RowsOut    int64 `json:"rows_out"`
			BytesOut   int64 `json:"bytes_out"`
			DurationMS int64 `json:"duration_ms"`
			Outputs    []struct {
				Files []string `json:"files"`
			} `json:"outputs"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not JSON: %v\n%s", err, r.stdout)
	}
	tk := res.Tasks[0]
	if res.RunID != "r1" || res.Status != "succeeded" || tk.Partitions != 3 || tk.RowsIn != 30000 || tk.RowsOut != 29799 || tk.BytesOut == 0 || len(tk.Outputs[0].Files) != 3 {
		t.Fatalf("result %+v", res)
	}
	// The same run id again (overwrite) commits the same files with the
	// same rows. (Row order inside a file may differ: a parallel join
	// emits rows in any order, as in DuckDB alone.)
	before := names(t, filepath.Join(dir, "out"))
	rowsBefore := rowSet(t, filepath.Join(dir, "out"))
	if r := liminal(t, dir, "run", spec, "--run-id", "r1"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if after := names(t, filepath.Join(dir, "out")); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("re-run changed the files:\n%v\n%v", before, after)
	}
	if after := rowSet(t, filepath.Join(dir, "out")); after != rowsBefore {
		t.Fatal("re-run changed the rows")
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// rowSet is a fingerprint of the rows under dir, independent of order.
func rowSet(t *testing.T, dir string) string {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	var h string
	q := "SELECT count(*), CAST(sum(hash(x)) AS VARCHAR) FROM (SELECT md5(CAST(r AS VARCHAR)) AS x FROM read_parquet('" + dir + "/*.parquet') r)"
	if err := db.QueryRow(q).Scan(&n, &h); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(n, h)
}

// TestBadInput: every kind of bad input gets a clear one-line error that
// names the place, the right exit code, and commits nothing.
func TestBadInput(t *testing.T) {
	tests := map[string]struct {
		events, sink, sql string
		spec              string // whole spec, instead of the template
		code              int
		want              []string
	}{
		"invalid spec":        {spec: "name: x\nsourcs: {}\n", code: 2, want: []string{"spec.yml:2:", `unknown field "sourcs"`}},
		"missing files":       {events: "data/nope/*.parquet", code: 1, want: []string{"spec.yml:3:", "sources.events.uri", "no file matches"}},
		"missing directory":   {events: "data/nope", code: 1, want: []string{"spec.yml:3:", "no such file or directory"}},
		"corrupt parquet":     {events: "data/bad", code: 1, want: []string{"spec.yml:3:", "x.parquet"}},
		"truncated parquet":   {events: "data/trunc", code: 1, want: []string{"spec.yml:3:", "x.parquet"}},
		"schemas differ":      {events: "data/mixed", code: 1, want: []string{"spec.yml:3:", "schema of", "2.parquet"}},
		"ragged csv":          {events: "data/ragged", sql: "SELECT * FROM events", code: 1, want: []string{"spec.yml:3:", "a.csv", "line 4", "wrong number of fields"}},
		"sql syntax error":    {sql: "SELEC * FROM events", code: 2, want: []string{"spec.yml:12:", "pipelines[0].tasks[0].sql", "syntax error"}},
		"unknown table":       {sql: "SELECT * FROM evnts", code: 2, want: []string{"spec.yml:12:", "evnts"}},
		"unknown column":      {sql: "SELECT amout FROM events", code: 2, want: []string{"spec.yml:12:", "amout"}},
		"not a select":        {sql: "DELETE FROM events", code: 2, want: []string{"spec.yml:12:", "SELECT"}},
		"runtime error":       {sql: "SELECT CAST(country AS INTEGER) AS c FROM events", code: 1, want: []string{"partition events-0000", "Conversion Error"}},
		"unknown sink format": {spec: strings.Replace(fmt.Sprintf(specTemplate, "data/events", "out/", "SELECT 1"), "mode: overwrite", "format: xlsx", 1), code: 2, want: []string{"spec.yml:6:", "xlsx"}},
		"unwritable sink":     {sink: "data/customers/c.parquet/out/", code: 1, want: []string{"sink"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := workspace(t)
			if tc.events == "" {
				tc.events = "data/events"
			}
			if tc.sink == "" {
				tc.sink = "out/"
			}
			if tc.sql == "" {
				tc.sql = "SELECT * FROM events"
			}
			body := tc.spec
			if body == "" {
				body = fmt.Sprintf(specTemplate, tc.events, tc.sink, `"`+tc.sql+`"`)
			}
			spec := writeSpec(t, dir, body)
			// Earlier output that a failed run must leave exactly as it was.
			if err := os.MkdirAll(filepath.Join(dir, "out"), 0o755); err != nil {
				t.Fatal(err)
			}
			_ = os.WriteFile(filepath.Join(dir, "out", "part-old.parquet"), []byte("previous output"), 0o644)
			_ = os.WriteFile(filepath.Join(dir, "out", "_SUCCESS"), []byte(`{"run_id":"old"}`), 0o644) // ours
			before := tree(t, dir)
			r := liminal(t, dir, "run", spec)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", r.code, tc.code, r.stderr)
			}
			// The error is the part of stderr from "liminal: " on (a spec's
			// problems follow, one per line); log lines come before it.
			last := r.stderr
			if i := strings.LastIndex(r.stderr, "liminal: "); i >= 0 {
				last = r.stderr[i:]
			}
			if tc.spec == "" && strings.Count(strings.TrimSpace(last), "\n") > 0 {
				t.Errorf("error is not one line: %q", last)
			}
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Errorf("error line %q does not mention %q", last, w)
				}
			}
			if after := tree(t, dir); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("a failed run changed the workspace:\nbefore %v\nafter  %v", before, after)
			}
			if r := liminal(t, dir, "validate", spec); r.code == 0 && tc.code == 2 {
				t.Errorf("validate accepted a spec that run rejects with exit 2")
			}
		})
	}
}

// TestCancelAndKill: Ctrl-C (SIGINT) and kill -9 in the middle of a run
// leave earlier output exactly as it was; the next run cleans up.
func TestCancelAndKill(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "big"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		duck(t, fmt.Sprintf(`COPY (SELECT i AS id, md5(i::VARCHAR) AS s FROM range(%d, %d) r(i)) TO '%s/big/p%d.parquet' (FORMAT parquet)`, i*1000000, (i+1)*1000000, dir, i))
	}
	query := "SELECT id, md5(md5(md5(s))) AS h FROM big"
	sqlArgs := func(runID string) []string {
		return []string{"sql", query, "--source", "big=" + filepath.Join(dir, "big"), "--sink", filepath.Join(dir, "out"),
			"--mode", "overwrite", "--workers", "2", "--target-rows", "250000", "--run-id", runID}
	}
	cmd := exec.Command(binary, append(sqlArgs("first"), "--target-rows", "4000000")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	before := tree(t, filepath.Join(dir, "out"))
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(binary, sqlArgs("victim-"+sig.String())...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until partitions are writing into staging, then signal.
			attempts := filepath.Join(dir, ".out.liminal", "victim-"+sig.String(), "attempts")
			deadline := time.Now().Add(60 * time.Second)
			for {
				if ents, _ := os.ReadDir(attempts); len(ents) > 0 {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatal("run never started writing")
				}
				time.Sleep(5 * time.Millisecond)
			}
			_ = cmd.Process.Signal(sig)
			err := cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			if sig == syscall.SIGINT && code != 1 {
				t.Fatalf("exit %d after SIGINT (%v): %s", code, err, stderr.String())
			}
			if after := tree(t, filepath.Join(dir, "out")); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Fatalf("output changed:\n%v\n%v", before, after)
			}
			if sig == syscall.SIGINT {
				if _, err := os.Stat(filepath.Join(dir, ".out.liminal")); !os.IsNotExist(err) {
					t.Fatalf("cancelled run left staging: %v", err)
				}
				if !strings.Contains(stderr.String(), "cancel") {
					t.Errorf("stderr does not say cancelled: %s", stderr.String())
				}
			}
		})
	}
	// A later run sweeps what the killed one left and commits normally.
	if out, err := exec.Command(binary, sqlArgs("after")...).CombinedOutput(); err != nil {
		t.Fatalf("run after kill: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, ".out.liminal")); !os.IsNotExist(err) {
		t.Fatalf("staging of the killed run was not swept: %v", err)
	}
}

func TestHelpEverywhere(t *testing.T) {
	for _, c := range []string{"", "run", "sql", "score", "serve", "plan", "validate", "gen", "version"} {
		args := []string{"--help"}
		if c != "" {
			args = []string{c, "--help"}
		}
		r := liminal(t, t.TempDir(), args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%s --help: exit %d, %q", c, r.code, r.stdout)
		}
	}
	if r := liminal(t, t.TempDir(), "run"); r.code != 2 {
		t.Errorf("run without a spec: exit %d", r.code)
	}
	if r := liminal(t, t.TempDir(), "frobnicate"); r.code != 2 {
		t.Errorf("unknown command: exit %d", r.code)
	}
}

func TestPlanAndValidate(t *testing.T) {
	dir := workspace(t)
	spec := writeSpec(t, dir, fmt.Sprintf(specTemplate, "data/events", "out/", `"SELECT country, count(*) AS n FROM events GROUP BY country"`))
	r := liminal(t, dir, "plan", spec, "--json")
	if r.code != 0 {
		t.Fatalf("plan: %d %s", r.code, r.stderr)
	}
	var p struct {
		Tasks []struct {
			Task string `json:"task"`
			Plan struct {
				Kind   string `json:"kind"`
				Splits []struct {
					ID      string `json:"id"`
					Locator string `json:"locator"`
					Rows    int64  `json:"rows"`
				} `json:"splits"`
			} `json:"plan"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Tasks) != 1 || p.Tasks[0].Plan.Kind != "two_stage" || len(p.Tasks[0].Plan.Splits) != 3 ||
		p.Tasks[0].Plan.Splits[0].ID != "events-00000" || p.Tasks[0].Plan.Splits[0].Rows != 10000 {
		t.Fatalf("plan %+v", p)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Fatal("plan wrote output")
	}
	r = liminal(t, dir, "plan", spec)
	if r.code != 0 || !strings.Contains(r.stdout, "events-00002") || !strings.Contains(r.stdout, "part-2.parquet") {
		t.Fatalf("plan text: %s", r.stdout)
	}
	if r := liminal(t, dir, "validate", spec); r.code != 0 || !strings.Contains(r.stdout, "valid") {
		t.Fatalf("validate: %d %s %s", r.code, r.stdout, r.stderr)
	}
	bad := writeSpec(t, dir, "name: x\npipelines:\n  - pipeline: p\n    tasks:\n      - task: t\n        type: sql\n        sql: SELECT 1\n        sink: nowhere\n")
	r = liminal(t, dir, "validate", bad, "--json")
	if r.code != 2 || !strings.Contains(r.stdout, `"valid":false`) || !strings.Contains(r.stdout, "spec.yml:8") {
		t.Fatalf("validate bad: %d %s", r.code, r.stdout)
	}
}
