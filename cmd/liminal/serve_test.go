package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

const serveLinearModel = `{"features": ["age", "income"], "coefficients": [0.5, -1.25], "intercept": 0.1, "link": "identity"}`

// serveWorkspace writes a linear model and a spec around services.
func serveWorkspace(t *testing.T, services string) (dir, spec string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "linear.json"), []byte(serveLinearModel), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, writeSpec(t, dir, "name: svc\nservices:\n"+services)
}

// startServe runs `liminal serve` as a process and returns it with the
// addresses it announced, by service.
func startServe(t *testing.T, want int, args ...string) (*exec.Cmd, map[string]string, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve"}, args...)...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	addrs := map[string]string{}
	var log bytes.Buffer
	line := regexp.MustCompile(`^serving (\S+) \((\w+), (\d+) features\) on http://(\S+)$`)
	sc := bufio.NewScanner(pipe)
	found := make(chan struct{})
	go func() {
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := line.FindStringSubmatch(sc.Text()); m != nil && len(addrs) < want {
				addrs[m[1]] = m[4]
				if len(addrs) == want {
					close(found)
				}
			}
		}
	}()
	select {
	case <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("liminal serve did not announce %d services:\n%s", want, log.String())
	}
	return cmd, addrs, &log
}

func httpJSON(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: %v: %s", method, url, err, b)
	}
	return resp.StatusCode, v
}

func TestServeCLI(t *testing.T) {
	_, spec := serveWorkspace(t, "  - service: lin_api\n    type: http_inference\n    model: {path: linear.json}\n")
	cmd, addrs, log := startServe(t, 1, spec, "--listen", "127.0.0.1:0", "--log-level", "debug", "--max-delay", "1ms")
	base := "http://" + addrs["lin_api"]
	if code, v := httpJSON(t, "GET", base+"/v2/health/ready", ""); code != 200 || v["ready"] != true {
		t.Fatalf("ready: %d %v", code, v)
	}
	code, v := httpJSON(t, "POST", base+"/v1/models/lin_api:predict", `{"instances": [{"age": 10, "income": 2}, [4, 1], {"age": null}]}`)
	p, _ := v["predictions"].([]any)
	if code != 200 || len(p) != 3 || math.Abs(p[0].(float64)-2.6) > 1e-12 || math.Abs(p[1].(float64)-0.85) > 1e-12 || p[2] != nil {
		t.Fatalf("predict: %d %v", code, v)
	}
	code, v = httpJSON(t, "POST", base+"/v2/models/lin_api/infer", `{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [[10, 2]]}]}`)
	if code != 200 || v["model_name"] != "lin_api" {
		t.Fatalf("infer: %d %v", code, v)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("liminal serve did not stop after SIGTERM")
	}
	for _, want := range []string{"level=DEBUG msg=request", "path=/v1/models/lin_api:predict", "status=200", "shutting down"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	if _, err := net.DialTimeout("tcp", addrs["lin_api"], time.Second); err == nil {
		t.Error("still listening after exit")
	}
}

// TestServeCLISeveralAddresses: services on different listen addresses run
// side by side; SIGINT stops them all with exit 0.
func TestServeCLISeveralAddresses(t *testing.T) {
	ports := make([]string, 2)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().String()
		l.Close()
	}
	_, spec := serveWorkspace(t, fmt.Sprintf(`  - service: a
    type: http_inference
    model: {path: linear.json}
    listen: %q
  - service: b
    type: http_inference
    model: {path: linear.json, features: [x, y]}
    listen: %q
`, ports[0], ports[1]))
	cmd, addrs, log := startServe(t, 2, spec)
	if addrs["a"] != ports[0] || addrs["b"] != ports[1] {
		t.Fatalf("addresses %v, want %v", addrs, ports)
	}
	if code, v := httpJSON(t, "POST", "http://"+addrs["b"]+"/v1/models/b:predict", `{"instances": [{"x": 10, "y": 2}]}`); code != 200 {
		t.Fatalf("b: %d %v", code, v)
	}
	if code, _ := httpJSON(t, "POST", "http://"+addrs["a"]+"/v1/models/b:predict", `{"instances": [[1, 2]]}`); code != 404 {
		t.Errorf("b served on a's address: %d", code)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, log.String())
	}
}

func TestServeCLIErrors(t *testing.T) {
	const lin = "  - service: lin_api\n    type: http_inference\n    model: {path: linear.json}\n"
	tests := []struct {
		name     string
		services string // "" writes a spec with a pipeline and no service
		args     []string
		code     int
		want     string
	}{
		{"no services", "", nil, 2, "no http_inference services"},
		{"unknown service", lin, []string{"--service", "nope"}, 2, `unknown service "nope" (known: lin_api)`},
		{"no model block", "  - service: m\n    type: http_inference\n", nil, 2, `spec.yml:3: services[0]: service "m" has no model`},
		{"bad model timeout", "  - service: m\n    type: http_inference\n    model: {path: linear.json, timeout: soon}\n", nil, 2, "timeout"},
		{"missing model file", "  - service: m\n    type: http_inference\n    model: {path: nope.json, format: linear}\n", nil, 2, "nope.json"},
		{"corrupt model", "  - service: m\n    type: http_inference\n    model: {path: spec.yml, format: linear}\n", nil, 1, "service m"},
		{"bad max-batch-rows", lin, []string{"--max-batch-rows", "0"}, 2, "--max-batch-rows"},
		{"bad listen", lin, []string{"--listen", "nowhere"}, 2, "--listen"},
		{"invalid spec", "  - service: m\n    type: grpc\n", nil, 2, "grpc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, spec := serveWorkspace(t, tc.services)
			if tc.services == "" {
				spec = writeSpec(t, dir, "name: x\nsources:\n  e: {uri: data}\nsinks:\n  o: {uri: out/}\npipelines:\n  - pipeline: p\n    tasks:\n      - task: t\n        type: sql\n        sql: SELECT * FROM e\n        sink: o\n")
			}
			r := liminal(t, dir, append([]string{"serve", spec}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want %d; stderr %q lacks %q", r.code, tc.code, r.stderr, tc.want)
			}
		})
	}
	// A port already taken is a failure to serve: exit 1.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir, spec := serveWorkspace(t, lin)
	if r := liminal(t, dir, "serve", spec, "--listen", l.Addr().String()); r.code != 1 || !strings.Contains(r.stderr, "listen") {
		t.Errorf("port in use: exit %d, %s", r.code, r.stderr)
	}
	if r := liminal(t, t.TempDir(), "serve", "--help"); r.code != 0 || !strings.Contains(r.stdout, "curl") || !strings.Contains(r.stdout, "--max-delay") {
		t.Errorf("serve --help: exit %d, %s", r.code, r.stdout)
	}
}
