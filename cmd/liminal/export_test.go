package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// airflowPython is the python of scripts/airflow.sh's venv (created on
// first use, minutes; cached in ~/.cache/liminal/venv-airflow). The test
// fails when it cannot be created, unless LIMINAL_SKIP_AIRFLOW=1.
func airflowPython(t *testing.T) string {
	t.Helper()
	if os.Getenv("LIMINAL_SKIP_AIRFLOW") == "1" {
		t.Skip("LIMINAL_SKIP_AIRFLOW=1")
	}
	start := time.Now()
	out, err := exec.Command("../../scripts/airflow.sh").Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += "\n" + string(ee.Stderr)
		}
		t.Fatalf("scripts/airflow.sh (set LIMINAL_SKIP_AIRFLOW=1 to skip the Airflow tests): %s", msg)
	}
	t.Logf("airflow venv ready in %s", time.Since(start).Round(time.Millisecond))
	return strings.TrimSpace(string(out))
}

// dagBagScript loads every DAG of a folder with Airflow's own DagBag and
// prints what the test checks, with templates rendered for one run id.
const dagBagScript = `
import json, sys
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
ctx = {"run_id": "scheduled__2026-01-01T01:30:00+00:00"}
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    tasks = {}
    for t in dag.tasks:
        skip = getattr(t, "skip_on_exit_code", None)
        skip = [skip] if isinstance(skip, int) else sorted(skip or [])
        d = {"type": type(t).__name__, "upstream": sorted(t.upstream_task_ids), "trigger_rule": str(t.trigger_rule), "skip": skip, "retries": t.retries}
        if hasattr(t, "bash_command"):
            d["command"] = t.render_template(t.bash_command, ctx)
        if hasattr(t, "arguments"):
            d["arguments"] = t.render_template(t.arguments, ctx)
            d["image"] = t.image
        tasks[t.task_id] = d
    sched = getattr(dag, "schedule_interval", None)
    if sched is None:
        sched = dag.timetable.summary
    out["dags"][dag_id] = {"schedule": str(sched), "timezone": dag.timezone.name, "catchup": dag.catchup,
                           "max_active_runs": dag.max_active_runs, "tasks": tasks}
print(json.dumps(out))
`

type dagBag struct {
	Errors map[string]string `json:"errors"`
	DAGs   map[string]struct {
		Schedule      string `json:"schedule"`
		Timezone      string `json:"timezone"`
		Catchup       bool   `json:"catchup"`
		MaxActiveRuns int    `json:"max_active_runs"`
		Tasks         map[string]struct {
			Type        string   `json:"type"`
			Upstream    []string `json:"upstream"`
			TriggerRule string   `json:"trigger_rule"`
			Skip        []int    `json:"skip"`
			Retries     int      `json:"retries"`
			Command     string   `json:"command"`
			Arguments   []string `json:"arguments"`
			Image       string   `json:"image"`
		} `json:"tasks"`
	} `json:"dags"`
}

func TestExportAirflow(t *testing.T) {
	python := airflowPython(t)
	dir, spec := orchWorkspace(t, "30 2 * * *")
	dags := t.TempDir()
	for _, args := range [][]string{
		{"--output", filepath.Join(dags, "bash.py"), "--start-date", "2026-01-01"},
		{"--output", filepath.Join(dags, "k8s.py"), "--operator", "kubernetes", "--image", "registry.example/liminal:1.0",
			"--spec-path", "/app/spec.yml", "--dag-id", "demo_k8s", "--retries", "4"},
		{"--output", filepath.Join(dags, "whole.py"), "--granularity", "pipeline", "--dag-id", "demo_whole"},
	} {
		if r := liminal(t, dir, append([]string{"export", "airflow", spec, "--pipeline", "nightly"}, args...)...); r.code != 0 {
			t.Fatalf("export %v: exit %d: %s", args, r.code, r.stderr)
		}
	}
	home := t.TempDir()
	cmd := exec.Command(python, "-c", dagBagScript, dags)
	cmd.Env = append(os.Environ(), "AIRFLOW_HOME="+home, "AIRFLOW__CORE__LOAD_EXAMPLES=False", "AIRFLOW__CORE__DAGS_FOLDER="+dags)
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("DagBag: %v\n%s", err, msg)
	}
	t.Logf("DagBag parsed in %s", time.Since(start).Round(time.Millisecond))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var bag dagBag
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &bag); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(bag.Errors) != 0 {
		t.Fatalf("import errors: %v", bag.Errors)
	}
	bash, ok := bag.DAGs["demo_nightly"]
	if !ok || bash.Schedule != "30 2 * * *" || bash.Timezone != "Europe/Berlin" || bash.Catchup || bash.MaxActiveRuns != 1 || len(bash.Tasks) != 2 {
		t.Fatalf("bash DAG %+v (all: %v)", bash, bag.DAGs)
	}
	big, small := bash.Tasks["big"], bash.Tasks["small"]
	if big.Type != "BashOperator" || len(big.Upstream) != 0 || small.Upstream[0] != "big" || len(small.Upstream) != 1 ||
		small.TriggerRule != "none_failed" || big.Skip[0] != 3 || big.Retries != 2 {
		t.Fatalf("bash tasks %+v", bash.Tasks)
	}
	// scheduled__2026-01-01T01:30:00+00:00 without ':' and '+'.
	const wantID = "scheduled__2026-01-01T0130000000"
	if !strings.Contains(big.Command, "run "+spec+" --pipeline nightly --task big --run-id \""+wantID+"\" --skip-if-committed --json") {
		t.Fatalf("command %s", big.Command)
	}
	k8s := bag.DAGs["demo_k8s"]
	kb := k8s.Tasks["big"]
	if kb.Type != "KubernetesPodOperator" || kb.Image != "registry.example/liminal:1.0" || kb.Retries != 4 || kb.Skip[0] != 3 ||
		strings.Join(kb.Arguments, " ") != "run /app/spec.yml --pipeline nightly --task big --run-id "+wantID+" --skip-if-committed --json --result-file /airflow/xcom/return.json" ||
		k8s.Tasks["small"].Upstream[0] != "big" {
		t.Fatalf("kubernetes DAG %+v", k8s)
	}
	whole := bag.DAGs["demo_whole"]
	if len(whole.Tasks) != 1 || !strings.Contains(whole.Tasks["nightly"].Command, "--pipeline nightly --run-id") {
		t.Fatalf("pipeline DAG %+v", whole)
	}

	// The commands Airflow renders run: the first time they commit
	// (exit 0), a retry exits 3, which skip_on_exit_code makes "skipped".
	bin := t.TempDir()
	if err := os.Symlink(binary, filepath.Join(bin, "liminal")); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{0, 0, 3, 3} {
		task := []string{"big", "small"}[i%2]
		c := exec.Command("bash", "-c", bash.Tasks[task].Command)
		c.Dir = t.TempDir() // Airflow runs from a temporary directory
		c.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := c.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Fatalf("%s: exit %d, want %d\n%s", task, code, want, out)
		}
		res, _ := lastJSON(t, string(out)) // what BashOperator pushes to XCom
		if res.RunID != wantID {
			t.Fatalf("run id %q", res.RunID)
		}
	}
}

func TestExportAirflowErrors(t *testing.T) {
	dir, spec := orchWorkspace(t, "30 2 * * *")
	tests := map[string][]string{
		"kubernetes without image": {"--pipeline", "nightly", "--operator", "kubernetes"},
		"unknown operator":         {"--pipeline", "nightly", "--operator", "docker"},
		"unknown pipeline":         {"--pipeline", "nope"},
		"several pipelines":        {},
		"bad granularity":          {"--pipeline", "nightly", "--granularity", "stage"},
		"bad start date":           {"--pipeline", "nightly", "--start-date", "01/02/2026"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			if r := liminal(t, dir, append([]string{"export", "airflow", spec}, args...)...); r.code != 2 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
		})
	}
	// No schedule: a DAG triggered by hand.
	r := liminal(t, dir, "export", "airflow", spec, "--pipeline", "single_file")
	if r.code != 0 || !strings.Contains(r.stdout, "schedule=None") {
		t.Fatalf("exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}
