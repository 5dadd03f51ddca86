package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestScheduledPipelineAlertsEveryChannel: a two-task pipeline with a
// schedule, data checks and alerts runs from the scheduler; its failing
// check fails the run, which alerts a webhook, a Slack-compatible hook and
// e-mail through a real SMTP server (aiosmtpd from PyPI) on loopback.
func TestScheduledPipelineAlertsEveryChannel(t *testing.T) {
	if os.Getenv("LIMINAL_SKIP_INTEGRATION") == "1" {
		t.Skip("LIMINAL_SKIP_INTEGRATION=1")
	}
	root, _ := filepath.Abs("../..")
	out, err := exec.Command(filepath.Join(root, "scripts", "smtp.sh")).Output()
	if err != nil {
		t.Fatalf("scripts/smtp.sh: %v", err)
	}
	py := strings.TrimSpace(string(out))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	maildir := filepath.Join(t.TempDir(), "mail")
	smtp := exec.Command(py, "-m", "aiosmtpd", "-n", "-l", fmt.Sprintf("127.0.0.1:%d", port), "-c", "aiosmtpd.handlers.Mailbox", maildir)
	smtp.Stderr = os.Stderr
	if err := smtp.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = smtp.Process.Kill(); _ = smtp.Wait() }()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatal("the SMTP server did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}

	var mu sync.Mutex
	posts := map[string]string{}
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts[r.URL.Path] += string(b)
		mu.Unlock()
	}))
	defer hooks.Close()

	dir := workspace(t)
	spec := writeSpec(t, dir, fmt.Sprintf(`name: ops
sources:
  events: {uri: data/events}
sinks:
  daily: {uri: out/daily/, mode: overwrite}
  report: {uri: out/report.csv, mode: overwrite}
pipelines:
  - pipeline: nightly
    schedule: "* * * * *"
    timezone: Europe/Berlin
    sla: 1h
    alerts:
      - {on: [failure, check_failure], webhook: {url: "%[1]s/hook"}}
      - {on: [failure], slack: {url: "%[1]s/slack"}}
      - {on: [failure], email: {smtp: "127.0.0.1:%[2]d", from: liminal@example.com, to: [oncall@example.com], tls: none}}
    tasks:
      - task: daily
        type: sql
        sql: SELECT country, count(*) AS n, sum(amount) AS amount FROM events GROUP BY country
        sources: [events]
        sink: daily
        checks: [{type: unique, columns: [country]}, {type: row_count, min: 1}]
      - task: report
        type: sql
        sql: SELECT * FROM daily WHERE n > 0
        sources: [daily]
        depends_on: [daily]
        sink: report
        checks: [{type: accepted_values, columns: [country], values: [US, IL]}]
`, hooks.URL, port))
	state := t.TempDir()
	r := liminal(t, dir, "scheduler", spec, "--once", "--state", state)
	if r.code != 1 {
		t.Fatalf("scheduler --once: exit %d\n%s", r.code, r.stderr)
	}
	runs := liminal(t, dir, "runs", "nightly", "--state", state, "--json")
	if runs.code != 0 || !strings.Contains(runs.stdout, `"status":"failed"`) {
		t.Fatalf("runs: exit %d\n%s%s", runs.code, runs.stdout, runs.stderr)
	}
	// daily committed (its checks passed); report failed its check.
	if _, err := os.Stat(filepath.Join(dir, "out/daily/_SUCCESS")); err != nil {
		t.Fatalf("first task's output: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out/report.csv")); err == nil {
		t.Fatal("the failed task committed its output")
	}
	mu.Lock()
	hook, slack := posts["/hook"], posts["/slack"]
	mu.Unlock()
	if !strings.Contains(hook, `"kind":"failure"`) || !strings.Contains(hook, `"kind":"check_failure"`) || !strings.Contains(hook, "accepted_values(country)") {
		t.Fatalf("webhook got:\n%s", hook)
	}
	if !strings.Contains(slack, "nightly") || !strings.Contains(slack, "failed") {
		t.Fatalf("slack got:\n%s", slack)
	}
	var mail []byte
	for i := 0; i < 50 && len(mail) == 0; i++ {
		files, _ := filepath.Glob(filepath.Join(maildir, "new", "*"))
		if len(files) > 0 {
			mail, _ = os.ReadFile(files[0])
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !strings.Contains(string(mail), "Subject:") || !strings.Contains(string(mail), "nightly") || !strings.Contains(string(mail), "oncall@example.com") {
		t.Fatalf("mail:\n%s", mail)
	}
}
