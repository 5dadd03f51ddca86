package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type runsJSON struct {
	Runs []struct {
		RunID       string          `json:"run_id"`
		Pipeline    string          `json:"pipeline"`
		Status      string          `json:"status"`
		Trigger     string          `json:"trigger"`
		ScheduledAt time.Time       `json:"scheduled_at"`
		RowsOut     int64           `json:"rows_out"`
		Result      json.RawMessage `json:"result"`
	} `json:"runs"`
}

func listRuns(t *testing.T, dir, state string, args ...string) runsJSON {
	t.Helper()
	r := liminal(t, dir, append([]string{"runs", "--state", state, "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("runs: exit %d: %s", r.code, r.stderr)
	}
	var out runsJSON
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &out); err != nil {
		t.Fatalf("runs --json: %v\n%s", err, r.stdout)
	}
	return out
}

func TestSchedulerOnce(t *testing.T) {
	dir, spec := orchWorkspace(t, "* * * * *")
	state := filepath.Join(t.TempDir(), "state")
	if got := listRuns(t, dir, state); len(got.Runs) != 0 {
		t.Fatalf("runs before any: %+v", got)
	}
	before := time.Now().UTC().Truncate(time.Minute)
	r := liminal(t, dir, "scheduler", spec, "--state", state, "--once", "--workers", "2")
	if r.code != 0 {
		t.Fatalf("scheduler --once: exit %d: %s", r.code, r.stderr)
	}
	got := listRuns(t, dir, state)
	if len(got.Runs) != 1 {
		t.Fatalf("runs %+v", got)
	}
	run := got.Runs[0]
	slot := run.ScheduledAt
	if slot.Before(before) || slot.After(time.Now()) || run.RunID != "nightly-"+slot.Format("20060102T150405Z") ||
		run.Status != "succeeded" || run.Trigger != "schedule" || run.RowsOut != 100 || len(run.Result) == 0 {
		t.Fatalf("run %+v", run)
	}
	// The output carries the slot's run id.
	if _, err := os.Stat(filepath.Join(dir, "out/big/part-events-00000-"+run.RunID+".parquet")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stderr, "run finished") || !strings.Contains(r.stderr, run.RunID) {
		t.Fatalf("log:\n%s", r.stderr)
	}
	// The table.
	tab := liminal(t, dir, "runs", "nightly", "--state", state)
	if tab.code != 0 || !strings.Contains(tab.stdout, "RUN ID") || !strings.Contains(tab.stdout, run.RunID) {
		t.Fatalf("runs table: %s %s", tab.stdout, tab.stderr)
	}
	if got := listRuns(t, dir, state, "other"); len(got.Runs) != 0 {
		t.Fatalf("another pipeline's runs: %+v", got)
	}
	// Again: the slot is recorded, so only a newer minute's slot may run.
	if r := liminal(t, dir, "scheduler", spec, "--state", state, "--once"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, x := range listRuns(t, dir, state).Runs {
		if x.RunID == run.RunID && x.Status != "succeeded" {
			t.Fatalf("slot %s ran again: %+v", run.RunID, x)
		}
	}
	if n := len(listRuns(t, dir, state).Runs); n > 2 {
		t.Fatalf("%d runs after a second pass", n)
	}
}

func TestSchedulerUsage(t *testing.T) {
	dir, spec := orchWorkspace(t, "61 * * * *")
	state := t.TempDir()
	r := liminal(t, dir, "scheduler", spec, "--state", state, "--once")
	if r.code != 2 || !strings.Contains(r.stderr, "spec.yml:") || !strings.Contains(r.stderr, "schedule") {
		t.Fatalf("bad schedule: exit %d: %s", r.code, r.stderr)
	}
	noSched := writeSpec(t, t.TempDir(), "name: x\nsources:\n  e: {uri: data}\nsinks:\n  o: {uri: out/}\npipelines:\n  - pipeline: p\n    tasks:\n      - {task: t, type: sql, sql: SELECT 1, sink: o}\n")
	if r := liminal(t, dir, "scheduler", noSched, "--state", state, "--once"); r.code != 2 || !strings.Contains(r.stderr, "schedule") {
		t.Fatalf("no schedule: exit %d: %s", r.code, r.stderr)
	}
}

// The scheduler as a process: it runs the latest slot at once (nothing
// was recorded), holds the state directory against a second scheduler,
// and stops on SIGTERM with exit 0.
func TestSchedulerDaemonSignal(t *testing.T) {
	dir, spec := orchWorkspace(t, "* * * * *")
	state := filepath.Join(t.TempDir(), "state")
	cmd := exec.Command(binary, "scheduler", spec, "--state", state, "--workers", "2")
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if rs := listRuns(t, dir, state).Runs; len(rs) > 0 && rs[0].Status == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no run recorded:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := liminal(t, dir, "scheduler", spec, "--state", state, "--once"); r.code != 1 || !strings.Contains(r.stderr, "another liminal scheduler uses "+state) {
		t.Fatalf("second scheduler: exit %d: %s", r.code, r.stderr)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit after SIGTERM:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "scheduler stopping") {
		t.Fatalf("log:\n%s", stderr.String())
	}
}
