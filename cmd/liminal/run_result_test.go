package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// orchWorkspace is a small CSV input and a two-task spec with a schedule,
// for the orchestration tests (scheduler, --result-file, exit 3, export).
func orchWorkspace(t *testing.T, schedule string) (dir, specPath string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("id,amount\n")
	for i := range 100 {
		fmt.Fprintf(&b, "%d,%g\n", i, float64(i)*0.5)
	}
	if err := os.WriteFile(filepath.Join(dir, "data/events.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	specPath = writeSpec(t, dir, fmt.Sprintf(`name: demo
sources:
  events: {uri: data/events.csv}
sinks:
  big: {uri: out/big/, mode: overwrite}
  small: {uri: out/small/, mode: overwrite}
  one: {uri: out/one.csv, mode: overwrite}
pipelines:
  - pipeline: nightly
    schedule: %q
    timezone: Europe/Berlin
    tasks:
      - task: big
        type: sql
        sql: SELECT * FROM events WHERE amount > 10
        sink: big
      - task: small
        type: sql
        sql: SELECT * FROM events WHERE amount <= 10
        sink: small
  - pipeline: single_file
    tasks:
      - task: all
        type: sql
        sql: SELECT * FROM events
        sink: one
  - pipeline: broken
    tasks:
      - task: bad
        type: sql
        sql: SELECT no_such_column FROM events
        sink: big
`, schedule))
	return dir, specPath
}

type runJSON struct {
	RunID    string `json:"run_id"`
	Status   string `json:"status"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error"`
	Tasks    []struct {
		Task    string `json:"task"`
		Status  string `json:"status"`
		RowsOut int64  `json:"rows_out"`
		Outputs []struct {
			AlreadyCommitted bool `json:"already_committed"`
		} `json:"outputs"`
	} `json:"tasks"`
}

func lastJSON(t *testing.T, stdout string) (runJSON, string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	last := lines[len(lines)-1]
	var r runJSON
	if err := json.Unmarshal([]byte(last), &r); err != nil {
		t.Fatalf("last line is not JSON: %v\n%s", err, stdout)
	}
	return r, last
}

func readResultFile(t *testing.T, path string) (runJSON, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r runJSON
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("temporary files left next to the result file: %v", ents)
	}
	return r, strings.TrimSpace(string(b))
}

func TestResultFile(t *testing.T) {
	dir, spec := orchWorkspace(t, "@daily")
	tests := map[string]struct {
		args   []string
		code   int
		status string
		errHas string
	}{
		"success":        {[]string{"--pipeline", "nightly", "--run-id", "r1"}, 0, "succeeded", ""},
		"failed run":     {[]string{"--pipeline", "broken", "--run-id", "r2"}, 2, "failed", "no_such_column"},
		"unknown pipe":   {[]string{"--pipeline", "nope", "--run-id", "r3"}, 2, "failed", "nope"},
		"unknown task":   {[]string{"--pipeline", "nightly", "--task", "nope", "--run-id", "r4"}, 2, "failed", "--task"},
		"one task":       {[]string{"--pipeline", "nightly", "--task", "small", "--run-id", "r5"}, 0, "succeeded", ""},
		"missing output": {[]string{"--pipeline", "nightly", "--run-id", "r6", "--target-rows", "-1"}, 2, "", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "xcom", "return.json")
			r := liminal(t, dir, append([]string{"run", spec, "--json", "--result-file", path}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %s", r.code, tc.code, r.stderr)
			}
			if tc.status == "" { // a usage error: no run, no result
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Fatalf("result file written for a usage error: %v", err)
				}
				return
			}
			got, raw := readResultFile(t, path)
			_, stdout := lastJSON(t, r.stdout)
			if raw != stdout {
				t.Fatalf("result file and stdout differ:\n%s\n%s", raw, stdout)
			}
			if got.Status != tc.status || got.ExitCode != tc.code || !strings.Contains(got.Error, tc.errHas) {
				t.Fatalf("result %+v", got)
			}
		})
	}
	// --task small ran only that task.
	got, _ := lastJSON(t, liminal(t, dir, "run", spec, "--pipeline", "nightly", "--task", "small", "--run-id", "r7", "--json").stdout)
	if len(got.Tasks) != 1 || got.Tasks[0].Task != "small" || got.Tasks[0].RowsOut != 21 {
		t.Fatalf("--task: %+v", got)
	}
}

// Exit code 3: --skip-if-committed finds the run id committed by every
// task's sink and runs nothing.
func TestSkipIfCommitted(t *testing.T) {
	dir, spec := orchWorkspace(t, "@daily")
	run := func(args ...string) result {
		return liminal(t, dir, append([]string{"run", spec, "--json"}, args...)...)
	}
	if r := run("--pipeline", "nightly", "--run-id", "a", "--skip-if-committed"); r.code != 0 {
		t.Fatalf("first run: exit %d: %s", r.code, r.stderr)
	}
	before := tree(t, filepath.Join(dir, "out"))
	res := filepath.Join(t.TempDir(), "res.json")
	r := run("--pipeline", "nightly", "--run-id", "a", "--skip-if-committed", "--result-file", res)
	if r.code != exitSkipped {
		t.Fatalf("committed run id: exit %d, want 3: %s", r.code, r.stderr)
	}
	got, _ := lastJSON(t, r.stdout)
	if got.Status != "skipped" || got.ExitCode != 3 || len(got.Tasks) != 2 || !got.Tasks[0].Outputs[0].AlreadyCommitted || got.Tasks[1].RowsOut != 21 {
		t.Fatalf("result %+v", got)
	}
	if f, _ := readResultFile(t, res); f.Status != "skipped" {
		t.Fatalf("result file %+v", f)
	}
	if after := tree(t, filepath.Join(dir, "out")); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a skipped run changed the output:\n%v\n%v", before, after)
	}
	// One task of the pipeline committed under the id is enough for --task.
	if r := run("--pipeline", "nightly", "--run-id", "b", "--task", "big"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := run("--pipeline", "nightly", "--run-id", "b", "--task", "big", "--skip-if-committed"); r.code != 3 {
		t.Fatalf("--task big: exit %d", r.code)
	}
	if r := run("--pipeline", "nightly", "--run-id", "b", "--skip-if-committed"); r.code != 0 {
		t.Fatalf("small was not committed under b: exit %d: %s", r.code, r.stderr)
	}
	// Another id, or an overwrite by another run since, runs again.
	if r := run("--pipeline", "nightly", "--run-id", "a", "--skip-if-committed"); r.code != 0 {
		t.Fatalf("after b overwrote the output: exit %d: %s", r.code, r.stderr)
	}
	// A single-file sink keeps no run ids: it always runs.
	for range 2 {
		if r := run("--pipeline", "single_file", "--run-id", "c", "--skip-if-committed"); r.code != 0 {
			t.Fatalf("single file: exit %d: %s", r.code, r.stderr)
		}
	}
	if r := run("--pipeline", "nightly", "--skip-if-committed"); r.code != 2 || !strings.Contains(r.stderr, "--run-id") {
		t.Fatalf("without --run-id: exit %d: %s", r.code, r.stderr)
	}
}
