package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// linearModel is y = 0.5 + 0.25*amount - 2*customer_id.
const linearModel = `{"features": ["amount", "customer_id"], "coefficients": [0.25, -2], "intercept": 0.5, "link": "identity"}`

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkLinearScores compares every scored row with the model computed by
// DuckDB over the whole input.
func checkLinearScores(t *testing.T, dir, out, pred string) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := fmt.Sprintf(`SELECT count(*), count(s.event_id), max(abs(s.%s - (0.5 + 0.25 * e.amount - 2 * e.customer_id)))
		FROM read_parquet('%s/data/events/*.parquet') e LEFT JOIN read_parquet('%s/*.parquet') s USING (event_id)`, pred, dir, filepath.Join(dir, out))
	var n, matched int64
	var diff float64
	if err := db.QueryRow(q).Scan(&n, &matched, &diff); err != nil {
		t.Fatal(err)
	}
	var rows int64
	_ = db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s/*.parquet')`, filepath.Join(dir, out))).Scan(&rows)
	if n != 30000 || matched != n || rows != n || diff > 1e-9 {
		t.Fatalf("input %d rows, scored %d (matched %d), max difference %g", n, rows, matched, diff)
	}
}

func TestScoreCommand(t *testing.T) {
	dir := workspace(t)
	writeFile(t, filepath.Join(dir, "m.json"), linearModel)
	r := liminal(t, dir, "score", "--model", "m.json", "--input", "data/events", "--output", "out/", "--keep", "event_id",
		"--prediction", "y", "--target-rows", "4000", "--workers", "2", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var res struct {
		Status string
		Tasks  []struct {
			Partitions int
			RowsOut    int64 `json:"rows_out"`
		}
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != "succeeded" || res.Tasks[0].Partitions < 6 || res.Tasks[0].RowsOut != 30000 {
		t.Fatalf("result %+v", res)
	}
	checkLinearScores(t, dir, "out", "y")
}

func TestScorePipelineChained(t *testing.T) {
	dir := workspace(t)
	writeFile(t, filepath.Join(dir, "models/m.json"), linearModel)
	spec := writeSpec(t, dir, `name: test
sources:
  events: {uri: data/events}
  customers: {uri: data/customers}
sinks:
  scores: {uri: out/, mode: overwrite}
pipelines:
  - pipeline: p
    tasks:
      - task: features
        type: sql
        sql: SELECT e.event_id, e.amount, c.customer_id FROM events e JOIN customers c USING (customer_id)
        partition: {source: events, target_rows: 5000}
      - task: score
        type: batch_inference
        input: features
        model: {path: models/m.json}
        output: {columns: [event_id], prediction: score}
        sink: scores
`)
	r := liminal(t, dir, "run", spec, "--workers", "2")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// Only the scoring task ran: the features task has no sink of its own.
	if strings.Contains(r.stdout, "task features") || !strings.Contains(r.stdout, "task score: succeeded, 6 partitions") {
		t.Fatalf("summary:\n%s", r.stdout)
	}
	checkLinearScores(t, dir, "out", "score")
}

func TestScoreBadInput(t *testing.T) {
	dir := workspace(t)
	writeFile(t, filepath.Join(dir, "m.json"), linearModel)
	writeFile(t, filepath.Join(dir, "age.json"), `{"features": ["age", "amount"], "coefficients": [1, 2]}`)
	writeFile(t, filepath.Join(dir, "trunc.json"), linearModel[:40])
	writeFile(t, filepath.Join(dir, "lgb.txt"), "tree\nversion=v4\nnum_class=1\n")
	writeFile(t, filepath.Join(dir, "strict.json"), `{"features": ["amount"], "coefficients": [1], "missing": "error"}`)
	tests := map[string]struct {
		args []string
		code int
		want string
	}{
		"missing feature column": {[]string{"--model", "age.json"}, 2, `model input "age" not found in columns [event_id, customer_id, country, amount]`},
		"string feature":         {[]string{"--model", "m.json", "--features", "country,customer_id"}, 2, `model input "country" wants float64, column "country" is utf8`},
		"truncated model":        {[]string{"--model", "trunc.json", "--model-format", "linear"}, 1, "corrupt model"},
		"other format":           {[]string{"--model", "lgb.txt", "--model-format", "xgboost"}, 1, "xgboost model"},
		"unknown format":         {[]string{"--model", "m.json", "--model-format", "pmml"}, 2, `unknown model format "pmml"`},
		"missing model file":     {[]string{"--model", "nope.json", "--model-format", "linear"}, 1, "no such file"},
		"output collides":        {[]string{"--model", "m.json", "--prediction", "amount"}, 2, `output column "amount" collides`},
		"keep unknown column":    {[]string{"--model", "m.json", "--keep", "event_id,nope"}, 2, "output columns [nope] not found"},
		"null feature is error": {[]string{"--model", "strict.json", "--sql", "SELECT event_id, CASE WHEN event_id = 25000 THEN NULL ELSE amount END AS amount FROM input"},
			1, `feature "amount" is missing`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, "out-"+strings.ReplaceAll(name, " ", "_"))
			// Earlier output (of an earlier run: it has our manifest) must
			// survive a failed run untouched.
			writeFile(t, filepath.Join(out, "keep.txt"), "earlier")
			writeFile(t, filepath.Join(out, "_SUCCESS"), `{"run_id":"earlier"}`)
			args := append([]string{"score", "--input", "data/events", "--output", out, "--mode", "overwrite", "--target-rows", "4000"}, tc.args...)
			r := liminal(t, dir, args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, want %d; stderr does not contain %q:\n%s", r.code, tc.code, tc.want, r.stderr)
			}
			if got := tree(t, out); len(got) != 3 || !strings.HasPrefix(got[1], "_SUCCESS") || !strings.HasPrefix(got[2], "keep.txt") {
				t.Fatalf("output changed: %v", got)
			}
		})
	}
}

func TestValidateChecksModelBinding(t *testing.T) {
	dir := workspace(t)
	writeFile(t, filepath.Join(dir, "m.json"), `{"features": ["age", "amount"], "coefficients": [1, 2]}`)
	spec := writeSpec(t, dir, `name: test
sources:
  events: {uri: data/events}
sinks:
  scores: {uri: out/}
pipelines:
  - pipeline: p
    tasks:
      - task: score
        type: batch_inference
        input: events
        model:
          format: linear
          path: m.json
        sink: scores
`)
	r := liminal(t, dir, "validate", spec)
	if r.code != 2 || !strings.Contains(r.stderr, "spec.yml:12: pipelines[0].tasks[0].model: feature binding: model input \"age\" not found") {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
}

// TestOverwriteCwdRefused: `liminal sql ... --sink . --mode overwrite` (and
// `..`) are refused before anything runs, with exit 2, and the working
// directory, its input included, stays as it was; a foreign directory needs
// --force-overwrite.
func TestOverwriteCwdRefused(t *testing.T) {
	dir := workspace(t)
	before := listDir(t, dir)
	for _, sink := range []string{".", "./", "..", "data/events"} {
		r := liminal(t, dir, "sql", "SELECT * FROM events", "--source", "events=data/events", "--sink", sink, "--mode", "overwrite")
		if r.code != 2 || !strings.Contains(r.stderr, "refusing to overwrite") {
			t.Errorf("--sink %s: exit %d, stderr %s", sink, r.code, r.stderr)
		}
	}
	if after := listDir(t, dir); after != before {
		t.Fatalf("the working directory changed:\n%s\nwant\n%s", after, before)
	}
	foreign := filepath.Join(dir, "mine")
	writeFile(t, filepath.Join(foreign, "thesis.tex"), "years")
	r := liminal(t, dir, "sql", "SELECT * FROM events", "--source", "events=data/events", "--sink", "mine", "--mode", "overwrite")
	if r.code != 2 || !strings.Contains(r.stderr, "--force-overwrite") {
		t.Fatalf("foreign directory: exit %d, stderr %s", r.code, r.stderr)
	}
	r = liminal(t, dir, "sql", "SELECT * FROM events", "--source", "events=data/events", "--sink", "mine", "--mode", "overwrite", "--force-overwrite")
	if r.code != 0 {
		t.Fatalf("foreign directory, forced: exit %d, stderr %s", r.code, r.stderr)
	}
}

// listDir lists every path under dir with its size.
func listDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d\n", p, info.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
