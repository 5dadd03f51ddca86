package main

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCommandTask: command tasks in a DAG — success with environment and
// working directory, a failure with the output's tail in the error, retries
// that eventually succeed, and a timeout that kills the program and its
// children.
func TestCommandTask(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ok.sh"), "#!/bin/sh\necho \"hello $GREETING from $(pwd)\" > ok.txt\necho done\n")
	writeFile(t, filepath.Join(dir, "fail.sh"), "#!/bin/sh\necho line one\necho 'something broke' >&2\nexit 7\n")
	// flaky.sh fails until it has run three times.
	writeFile(t, filepath.Join(dir, "flaky.sh"), "#!/bin/sh\nn=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n\n[ $n -ge 3 ]\n")
	writeFile(t, filepath.Join(dir, "hang.sh"), "#!/bin/sh\nsleep 300 &\necho $! > child.pid\nwait\n")
	for _, f := range []string{"ok.sh", "fail.sh", "flaky.sh", "hang.sh"} {
		_ = os.Chmod(filepath.Join(dir, f), 0o755)
	}
	spec := writeSpec(t, dir, `name: programs
pipelines:
  - pipeline: good
    tasks:
      - task: first
        type: command
        command: [./ok.sh]
        env: {GREETING: hi}
      - task: flaky
        type: command
        command: [./flaky.sh]
        retries: 3
        retry_delay: 10ms
        depends_on: [first]
  - pipeline: bad
    tasks:
      - task: broken
        type: command
        command: [./fail.sh]
        retries: 0
  - pipeline: slow
    tasks:
      - task: hang
        type: command
        command: [./hang.sh]
        timeout: 1s
`)
	r := liminal(t, dir, "run", spec, "--pipeline", "good", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ok.txt")); !strings.Contains(string(b), "hello hi from "+dir) {
		t.Fatalf("ok.txt = %q", b)
	}
	if !strings.Contains(r.stdout, `"task":"flaky","status":"succeeded","partitions":1,"attempts":3,"retries":2`) {
		t.Fatalf("flaky result:\n%s", r.stdout)
	}

	r = liminal(t, dir, "run", spec, "--pipeline", "bad")
	if r.code != 1 || !strings.Contains(r.stderr, "fail.sh exit status 7; last output:") || !strings.Contains(r.stderr, "something broke") {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}

	start := time.Now()
	r = liminal(t, dir, "run", spec, "--pipeline", "slow")
	if r.code != 1 || !strings.Contains(r.stderr, "timed out after 1s") || time.Since(start) > 20*time.Second {
		t.Fatalf("exit %d after %s:\n%s", r.code, time.Since(start), r.stderr)
	}
	pid, _ := os.ReadFile(filepath.Join(dir, "child.pid"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		// the child of the program must be gone (or a zombie awaiting reaping)
		st, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the program's child %s survived the timeout", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSparkTask runs a PySpark application with spark-submit from the
// pyspark wheel (scripts/spark.sh) in local[2] mode, as a task after an sql
// task, and checks what it wrote; a failing application fails the run with
// the driver's output tail.
func TestSparkTask(t *testing.T) {
	if os.Getenv("LIMINAL_SKIP_INTEGRATION") == "1" {
		t.Skip("LIMINAL_SKIP_INTEGRATION=1")
	}
	root, _ := filepath.Abs("../..")
	out, err := exec.Command(filepath.Join(root, "scripts", "spark.sh")).Output()
	if err != nil {
		t.Fatalf("scripts/spark.sh: %v", err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app.py"), `import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("liminal-test").getOrCreate()
if sys.argv[2] == "fail":
    raise SystemExit("the application gave up")
spark.range(int(sys.argv[2])).selectExpr("id", "id * 2 AS doubled").coalesce(1).write.mode("overwrite").parquet(sys.argv[1])
print("wrote rows")
spark.stop()
`)
	spec := writeSpec(t, dir, fmt.Sprintf(`name: spark
pipelines:
  - pipeline: p
    tasks:
      - task: job
        type: spark
        spark:
          application: app.py
          master: "local[2]"
          spark_submit: %s
          conf: {spark.ui.enabled: "false", spark.driver.host: 127.0.0.1}
          args: [out/spark, "1000"]
        env: {PYSPARK_PYTHON: %s, SPARK_LOCAL_IP: 127.0.0.1}
        timeout: 5m
  - pipeline: failing
    tasks:
      - task: job
        type: spark
        spark: {application: app.py, master: "local[1]", spark_submit: %s, args: [out/none, fail]}
        env: {PYSPARK_PYTHON: %s, SPARK_LOCAL_IP: 127.0.0.1}
        retries: 0
`, env["LIMINAL_SPARK_SUBMIT"], env["LIMINAL_SPARK_PYTHON"], env["LIMINAL_SPARK_SUBMIT"], env["LIMINAL_SPARK_PYTHON"]))
	r := liminal(t, dir, "run", spec, "--pipeline", "p")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, sum int64
	if err := db.QueryRow(fmt.Sprintf(`SELECT count(*), sum(doubled) FROM read_parquet('%s/out/spark/*.parquet')`, dir)).Scan(&n, &sum); err != nil || n != 1000 || sum != 999000 {
		t.Fatalf("spark output: %d rows, sum %d, %v", n, sum, err)
	}
	r = liminal(t, dir, "run", spec, "--pipeline", "failing")
	if r.code != 1 || !strings.Contains(r.stderr, "spark-submit exit status") || !strings.Contains(r.stderr, "the application gave up") {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
}
