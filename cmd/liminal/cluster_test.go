package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a liminal process of a test cluster.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.Write(b)
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func startProc(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// midAttempt reports whether the process's last attempt had started and
// not ended (its log's last attempt line is "attempt started").
func (p *proc) midAttempt() bool {
	last := ""
	sc := bufio.NewScanner(strings.NewReader(p.log()))
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "msg=\"attempt ") {
			last = l
		}
	}
	return strings.Contains(last, "attempt started")
}

// testCluster is a coordinator (gRPC on grpc, REST on http) and workers.
type testCluster struct {
	t          *testing.T
	dir, state string
	grpc, http string
	coord      *proc
	workers    []*proc
	all        []*proc // every worker process started
	env        []string
}

func newTestCluster(t *testing.T, dir string, workers int, ttl string) *testCluster {
	c := &testCluster{t: t, dir: dir, state: filepath.Join(dir, "state"), grpc: freeAddr(t), http: freeAddr(t),
		env: []string{"LIMINAL_TOKEN=cluster-secret-1"}}
	c.startCoordinator(ttl)
	c.waitReady()
	for range workers {
		c.workers = append(c.workers, c.startWorker())
	}
	return c
}

func (c *testCluster) startCoordinator(ttl string) {
	c.coord = startProc(c.t, c.dir, c.env, "coordinator", "--listen", c.grpc, "--http", c.http, "--state", c.state,
		"--lease-ttl", ttl, "--grace", "1s", "--log-level", "info")
}

// waitReady waits for the coordinator's HTTP health endpoint.
func (c *testCluster) waitReady() {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + c.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("coordinator did not start:\n%s", c.coord.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *testCluster) startWorker() *proc {
	p := startProc(c.t, c.dir, c.env, "worker", "--coordinator", c.grpc, "--slots", "1")
	c.all = append(c.all, p)
	return p
}

// submit runs `liminal run --coordinator` as a process.
func (c *testCluster) submit(args ...string) *proc {
	return startProc(c.t, c.dir, c.env, append([]string{"run", "--coordinator", c.grpc, "--json"}, args...)...)
}

func copyExample(t *testing.T, dst string, genArgs ...string) {
	t.Helper()
	root, _ := filepath.Abs("../../examples/quickstart")
	for _, p := range []string{"pipeline.yml", "sql", "models"} {
		if out, err := exec.Command("cp", "-r", filepath.Join(root, p), dst).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	if out, err := exec.Command(binary, append([]string{"gen", "--dir", filepath.Join(dst, "data")}, genArgs...)...).CombinedOutput(); err != nil {
		t.Fatalf("gen: %v %s", err, out)
	}
}

// sameRows compares two DuckDB table expressions as multisets of rows.
func sameRows(t *testing.T, a, b string) (rows int64) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var na, nb, onlyA, onlyB int64
	q := fmt.Sprintf(`SELECT (SELECT count(*) FROM %[1]s), (SELECT count(*) FROM %[2]s),
		(SELECT count(*) FROM (SELECT * FROM %[1]s EXCEPT ALL SELECT * FROM %[2]s)),
		(SELECT count(*) FROM (SELECT * FROM %[2]s EXCEPT ALL SELECT * FROM %[1]s))`, a, b)
	if err := db.QueryRow(q).Scan(&na, &nb, &onlyA, &onlyB); err != nil {
		t.Fatal(err)
	}
	if na != nb || onlyA != 0 || onlyB != 0 {
		t.Errorf("%s: %d rows, %d only there; %s: %d rows, %d only there", a, na, onlyA, b, nb, onlyB)
	}
	return na
}

func lastJSONObject(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var v map[string]any
		if json.Unmarshal([]byte(lines[i]), &v) == nil {
			return v
		}
	}
	t.Fatalf("no JSON result in:\n%s", out)
	return nil
}

// A pipeline submitted to a coordinator with 3 worker processes commits
// the same output as the same pipeline run locally: partition-local SQL,
// a two-stage aggregate (partial results cross processes as Arrow IPC), an
// intermediate task result read by a batch-inference task.
func TestClusterMatchesLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	local, remote := t.TempDir(), t.TempDir()
	copyExample(t, local, "--rows", "200000", "--row-group-rows", "10000", "--files", "4")
	copyExample(t, remote, "--rows", "200000", "--row-group-rows", "10000", "--files", "4")
	lr := liminal(t, local, "run", "pipeline.yml", "--target-rows", "20000", "--run-id", "same", "--json")
	if lr.code != 0 {
		t.Fatalf("local run: %d %s", lr.code, lr.stderr)
	}
	planOf := func(res map[string]any) map[string]string {
		plans := map[string]string{}
		for _, tr := range res["tasks"].([]any) {
			m := tr.(map[string]any)
			plans[m["task"].(string)] = fmt.Sprint(m["plan"], "/", m["partitions"], "/", m["rows_out"])
		}
		return plans
	}
	localPlans := planOf(lastJSONObject(t, lr.stdout))
	c := newTestCluster(t, remote, 3, "3s")
	run := c.submit("pipeline.yml", "--target-rows", "20000", "--run-id", "same")
	select {
	case <-run.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("cluster run did not end:\n%s\ncoordinator:\n%s", run.log(), c.coord.log())
	}
	if code := run.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("cluster run: exit %d\n%s\ncoordinator:\n%s", code, run.log(), c.coord.log())
	}
	res := lastJSONObject(t, run.log())
	if res["status"] != "succeeded" || res["run_id"] != "same" {
		t.Fatalf("result: %v", res)
	}
	plans := planOf(res)
	if fmt.Sprint(plans) != fmt.Sprint(localPlans) || !strings.HasPrefix(plans["daily_revenue"], "two_stage/") {
		t.Errorf("plans: cluster %v, local %v", plans, localPlans)
	}
	busy := 0
	for _, w := range c.workers {
		if strings.Contains(w.log(), "attempt accepted") {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("only %d of 3 workers ran partitions", busy)
	}
	for _, o := range []string{"read_parquet('%s/out/purchases/**/*.parquet', hive_partitioning=true)",
		// Sums of doubles added in another order differ in the last bits
		// (as between two local runs): compared to 1e-6.
		"(SELECT * REPLACE (round(revenue, 6) AS revenue, round(avg_order_value, 6) AS avg_order_value) FROM read_csv('%s/out/daily_revenue.csv'))",
		"read_parquet('%s/out/propensity/*.parquet')"} {
		if n := sameRows(t, fmt.Sprintf(o, local), fmt.Sprintf(o, remote)); n == 0 {
			t.Errorf("%s: no rows", o)
		}
	}
	// liminal sql --coordinator: the ad-hoc job as a spec, on the workers.
	q := "SELECT country, count(*) AS n, round(sum(amount), 4) AS s FROM events GROUP BY country"
	sqlArgs := []string{"sql", q, "--source", "events=data/events", "--sink", "out/by_country.parquet", "--target-rows", "20000"}
	if r := liminal(t, local, sqlArgs...); r.code != 0 {
		t.Fatalf("local sql: %d %s", r.code, r.stderr)
	}
	sq := startProc(t, remote, c.env, append(sqlArgs, "--coordinator", c.grpc)...)
	<-sq.done
	if code := sq.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("sql --coordinator: exit %d\n%s", code, sq.log())
	}
	sameRows(t, fmt.Sprintf("read_parquet('%s/out/by_country.parquet')", local), fmt.Sprintf("read_parquet('%s/out/by_country.parquet')", remote))
	// The same run id again: idempotent, nothing duplicated.
	again := c.submit("pipeline.yml", "--target-rows", "20000", "--run-id", "same")
	<-again.done
	if code := again.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("re-run: exit %d\n%s", code, again.log())
	}
	sameRows(t, fmt.Sprintf("read_parquet('%s/out/propensity/*.parquet')", local), fmt.Sprintf("read_parquet('%s/out/propensity/*.parquet')", remote))
}

// Clients and workers without the token are refused, and the token never
// appears in what they print.
func TestClusterAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	dir := t.TempDir()
	copyExample(t, dir, "--rows", "1000")
	c := newTestCluster(t, dir, 0, "3s")
	bad := []string{"LIMINAL_TOKEN=wrong-token-42"}
	run := startProc(t, dir, bad, "run", "pipeline.yml", "--coordinator", c.grpc)
	<-run.done
	if code := run.cmd.ProcessState.ExitCode(); code != exitInvalid || !strings.Contains(run.log(), "missing or invalid token") {
		t.Errorf("unauthenticated run: exit %d\n%s", code, run.log())
	}
	w := startProc(t, dir, bad, "worker", "--coordinator", c.grpc)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		t.Fatal("a worker with a wrong token kept running")
	}
	if code := w.cmd.ProcessState.ExitCode(); code != exitFailed || !strings.Contains(w.log(), "missing or invalid token") {
		t.Errorf("unauthenticated worker: exit %d\n%s", code, w.log())
	}
	for _, p := range []*proc{run, w, c.coord} {
		if strings.Contains(p.log(), "wrong-token-42") || strings.Contains(p.log(), "cluster-secret-1") {
			t.Errorf("a token appears in the output:\n%s", p.log())
		}
	}
}

// chaosSpec has a partition-local task of 120 partitions and a two-stage
// aggregate over the same input.
const chaosSpec = `name: chaos
sources:
  events: {uri: data/events}
sinks:
  copy: {uri: out/copy/, format: parquet, mode: overwrite}
  agg:  {uri: out/agg.parquet, mode: overwrite}
pipelines:
  - pipeline: chaos
    tasks:
      - task: copy
        type: sql
        sql: SELECT event_id, customer_id, event_type, amount * 2 AS amount2, ts FROM events
        sink: copy
        partition: {by: row_groups, target_rows: 5000}
      - task: agg
        type: sql
        sql: SELECT customer_id, count(*) AS n, sum(amount) AS total FROM events GROUP BY customer_id
        sink: agg
        partition: {by: row_groups, target_rows: 20000}
`

// The chaos test: a coordinator and 3 workers on loopback run a job of 120
// partitions while workers are killed (SIGKILL) at random moments and
// restarted, and the coordinator is killed and restarted once; the
// committed output must equal the reference exactly, for several seeds.
func TestClusterChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	seeds := []uint64{1, 2, 3}
	var totalKills, totalMid, mismatches int
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			kills, mid, bad := chaosRun(t, seed)
			totalKills += kills
			totalMid += mid
			mismatches += bad
		})
	}
	t.Logf("chaos: %d runs, %d worker kills (%d mid-attempt), %d coordinator restarts, %d mismatched runs",
		len(seeds), totalKills, totalMid, len(seeds), mismatches)
}

func chaosRun(t *testing.T, seed uint64) (kills, mid, mismatched int) {
	dir := t.TempDir()
	if out, err := exec.Command(binary, "gen", "--dir", filepath.Join(dir, "data"), "--rows", "600000",
		"--row-group-rows", "5000", "--files", "4", "--seed", fmt.Sprint(seed)).CombinedOutput(); err != nil {
		t.Fatalf("gen: %v %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "chaos.yml"), []byte(chaosSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	c := newTestCluster(t, dir, 3, "1s")
	run := c.submit("chaos.yml", "--run-id", fmt.Sprint("chaos-", seed))
	restarted, pauses := false, 0
	// Events are paced by progress (attempts accepted, counted in the
	// workers' logs), not by the clock: on a quiet machine the whole run
	// takes about a second, on a loaded one a minute, and either way the
	// kills must land while partitions are running. Each event waits for a
	// few more accepted attempts, then a random delay, so it falls at a
	// random point of the attempts in flight.
	accepted := func() (n int) {
		for _, w := range c.all {
			n += strings.Count(w.log(), "attempt accepted")
		}
		return n
	}
	next := 2 + rng.IntN(4)
	var resume <-chan time.Time
	var paused *proc
	deadline := time.After(4 * time.Minute)
loop:
	for {
		select {
		case <-run.done:
			break loop
		case <-deadline:
			t.Fatalf("run did not end:\n%s\ncoordinator:\n%s", run.log(), c.coord.log())
		case <-resume:
			_ = paused.cmd.Process.Signal(syscall.SIGCONT)
			resume, paused = nil, nil
			continue
		case <-time.After(10 * time.Millisecond):
		}
		if accepted() < next {
			continue
		}
		select {
		case <-run.done:
			break loop
		case <-time.After(time.Duration(rng.IntN(60)) * time.Millisecond):
		}
		next = accepted() + 2 + rng.IntN(5)
		switch {
		case kills >= 3 && !restarted:
			c.coord.kill()
			time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
			c.startCoordinator("1s")
			restarted = true
			continue
		case kills >= 8:
			continue
		}
		i := rng.IntN(len(c.workers))
		w := c.workers[i]
		if w == paused {
			continue
		}
		if kills == 5 && pauses == 0 {
			// A hung worker: stopped past its lease TTL, then resumed
			// while the run goes on. Its late completions ("zombies")
			// must be refused.
			_ = w.cmd.Process.Signal(syscall.SIGSTOP)
			paused, resume = w, time.After(2500*time.Millisecond)
			pauses++
			continue
		}
		if w.midAttempt() {
			mid++
		}
		w.kill()
		kills++
		c.workers[i] = c.startWorker()
	}
	if paused != nil {
		_ = paused.cmd.Process.Signal(syscall.SIGCONT)
	}
	if code := run.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("run: exit %d after %d kills\n%s\ncoordinator:\n%s", code, kills, run.log(), c.coord.log())
	}
	if !strings.Contains(c.coord.log(), "resuming run") {
		t.Errorf("the restarted coordinator did not resume the run:\n%s", c.coord.log())
	}
	if kills < 5 || !restarted {
		t.Errorf("the run ended after only %d worker kills (coordinator restarted: %v): make it longer", kills, restarted)
	}
	before := t.Failed()
	n := sameRows(t, fmt.Sprintf("read_parquet('%s/out/copy/*.parquet')", dir),
		fmt.Sprintf("(SELECT event_id, customer_id, event_type, amount * 2 AS amount2, ts FROM read_parquet('%s/data/events/*.parquet'))", dir))
	// amount is a DOUBLE: sums added in another order differ in the last
	// bits, so totals compare to 1e-6.
	sameRows(t, fmt.Sprintf("(SELECT customer_id, n, round(total, 6) FROM read_parquet('%s/out/agg.parquet'))", dir),
		fmt.Sprintf("(SELECT customer_id, count(*) AS n, round(sum(amount), 6) AS total FROM read_parquet('%s/data/events/*.parquet') GROUP BY customer_id)", dir))
	if n != 600000 {
		t.Errorf("copy: %d rows, want 600000", n)
	}
	if t.Failed() != before {
		mismatched = 1
	}
	staging, _ := filepath.Glob(filepath.Join(dir, "out", ".*.liminal", "*", "attempts", "*"))
	if len(staging) > 0 {
		t.Errorf("staging left behind: %v", staging)
	}
	refused := 0
	for _, w := range c.all {
		refused += strings.Count(w.log(), "attempt not accepted")
	}
	t.Logf("seed %d: %d worker kills (%d mid-attempt), %d worker paused past its lease, %d late completions refused, coordinator restarted once",
		seed, kills, mid, pauses, refused)
	return kills, mid, mismatched
}
