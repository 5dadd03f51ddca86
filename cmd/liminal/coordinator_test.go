package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCoordinatorNeedsToken(t *testing.T) {
	t.Setenv("LIMINAL_TOKEN", "")
	dir := t.TempDir()
	r := liminal(t, dir, "coordinator", "--http", "127.0.0.1:0")
	if r.code != exitInvalid || !strings.Contains(r.stderr, "LIMINAL_TOKEN") || !strings.Contains(r.stderr, "--insecure-no-auth") {
		t.Errorf("without a token: exit %d: %s", r.code, r.stderr)
	}
	for _, args := range [][]string{{"--http", "0.0.0.0:0"}, {"--http", ":0"}, {"--http", "127.0.0.1:0", "--listen", "192.0.2.1:0"}} {
		r := liminal(t, dir, append([]string{"coordinator", "--insecure-no-auth"}, args...)...)
		if r.code != exitInvalid || !strings.Contains(r.stderr, "loopback") {
			t.Errorf("--insecure-no-auth %v: exit %d: %s", args, r.code, r.stderr)
		}
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	if r := liminal(t, dir, "coordinator", "--token-file", empty); r.code != exitInvalid || !strings.Contains(r.stderr, "empty") {
		t.Errorf("empty token file: exit %d: %s", r.code, r.stderr)
	}
	if r := liminal(t, dir, "coordinator", "--token-file", empty, "--http", "nope"); r.code != exitInvalid {
		t.Errorf("bad --http: exit %d: %s", r.code, r.stderr)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type coordProc struct {
	cmd    *exec.Cmd
	base   string
	stderr *bytes.Buffer
}

func startCoordinator(t *testing.T, dir string, args ...string) *coordProc {
	t.Helper()
	addr := freeAddr(t)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("tok-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, append([]string{"coordinator", "--http", addr, "--token-file", tokenFile, "--grace", "1s"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &coordProc{cmd: cmd, base: "http://" + addr, stderr: &stderr}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("coordinator did not start: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *coordProc) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, p.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer tok-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, v
}

// stop sends SIGTERM and returns the exit code.
func (p *coordProc) stop(t *testing.T) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("coordinator did not stop on SIGTERM\n%s", p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

func TestCoordinatorCommand(t *testing.T) {
	dir := workspace(t)
	writeSpec(t, dir, fmt.Sprintf(specTemplate, "data/events", "out/copy/", `"SELECT event_id, amount FROM events WHERE amount >= 100"`))
	state := filepath.Join(dir, "state")
	p := startCoordinator(t, dir, "--state", state, "--spec", "spec.yml", "--workers", "2")

	if code, _ := p.call(t, "GET", "/api/v1/runs", ""); code != http.StatusOK {
		t.Fatalf("list: %d", code)
	}
	req, _ := http.NewRequest("GET", p.base+"/api/v1/runs", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	code, run := p.call(t, "POST", "/api/v1/runs", `{"spec_name": "test", "run_id": "cli-1", "workers": 2}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit: %d %v", code, run)
	}
	deadline := time.Now().Add(60 * time.Second)
	for run["result"] == nil {
		if time.Now().After(deadline) {
			t.Fatalf("run did not end: %v", run)
		}
		time.Sleep(100 * time.Millisecond)
		_, run = p.call(t, "GET", "/api/v1/runs/cli-1", "")
	}
	res := run["result"].(map[string]any)
	task := res["tasks"].([]any)[0].(map[string]any)
	if run["status"] != "succeeded" || task["rows_out"] != float64(29800) {
		t.Fatalf("run: %v", run)
	}
	if code, _ := p.call(t, "GET", "/api/v1/openapi.json", ""); code != http.StatusOK {
		t.Errorf("openapi.json: %d", code)
	}
	if c := p.stop(t); c != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", c, p.stderr.String())
	}
	if strings.Contains(p.stderr.String(), "tok-123") {
		t.Errorf("the token was logged")
	}

	// A restarted coordinator lists the run kept under --state.
	p = startCoordinator(t, dir, "--state", state)
	code, list := p.call(t, "GET", "/api/v1/runs?status=succeeded", "")
	runs, _ := list["runs"].([]any)
	if code != http.StatusOK || len(runs) != 1 || runs[0].(map[string]any)["id"] != "cli-1" {
		t.Errorf("runs after restart: %d %v", code, list)
	}
	if c := p.stop(t); c != 0 {
		t.Errorf("exit %d after SIGTERM", c)
	}
}
