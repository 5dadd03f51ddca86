package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/coordinator/lease"
	"github.com/liminal-data/liminal/partition"
)

// fakeExec stands for a worker's engine: every attempt stages a manifest
// naming its split and attempt (the lease token).
type fakeExec struct {
	mu    sync.Mutex
	runs  map[string]int
	fail  map[string]error
	delay time.Duration
}

func (f *fakeExec) Plan(context.Context, *coordinator.Task) (*coordinator.TaskPlan, error) {
	return nil, errors.New("not used")
}
func (f *fakeExec) Slots() int                                             { return 1 }
func (f *fakeExec) Release(context.Context, []string) error                { return nil }
func (f *fakeExec) ExportPartial(context.Context, string, io.Writer) error { return nil }
func (f *fakeExec) ImportPartial(context.Context, io.Reader) (string, int64, error) {
	return "imported", 0, nil
}
func (f *fakeExec) Run(ctx context.Context, a coordinator.Attempt) (coordinator.AttemptResult, error) {
	f.mu.Lock()
	f.runs[a.Split.ID]++
	err := f.fail[a.Split.ID]
	f.mu.Unlock()
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return coordinator.AttemptResult{}, ctx.Err()
	}
	if err != nil {
		return coordinator.AttemptResult{}, err
	}
	return coordinator.AttemptResult{Manifest: &connectors.Manifest{SplitID: a.Split.ID, Attempt: a.Number, Rows: 1}, RowsOut: 1}, nil
}

type testEnv struct {
	srv   *Server
	addr  string
	dir   string
	local *fakeExec
}

func startServer(t *testing.T, dir, token string) *testEnv {
	t.Helper()
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Config{Journal: j, Lease: lease.Options{LeaseTTL: time.Second}, Tick: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := ServerOptions(token, "", "")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	srv.Register(gs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(func() { gs.Stop(); srv.Close(); _ = j.Close() })
	return &testEnv{srv: srv, addr: ln.Addr().String(), dir: dir, local: &fakeExec{runs: map[string]int{}}}
}

func startWorker(t *testing.T, env *testEnv, token string, exec *fakeExec) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	task := &coordinator.Task{Name: "t"}
	go func() {
		done <- RunWorker(ctx, WorkerConfig{Dial: DialConfig{Addr: env.addr, Token: token}, Slots: 2, Exec: exec,
			Resolve: func(context.Context, *coordinator.Recipe, string) ([]*coordinator.Task, error) {
				return []*coordinator.Task{task}, nil
			}})
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return cancel
}

func splits(n int) []partition.Split {
	out := make([]partition.Split, n)
	for i := range out {
		out[i] = partition.Split{ID: fmt.Sprintf("p%03d", i)}
	}
	return out
}

// runAll runs every split through the executor as the coordinator's run
// loop does: all at once, each waiting for its accepted attempt.
func runAll(ctx context.Context, ex *Executor, runID string, sp []partition.Split) ([]coordinator.AttemptResult, []error) {
	plan := &coordinator.TaskPlan{Kind: "local", Splits: sp, Exec: []byte(`{}`)}
	task := &coordinator.Task{Name: "t", Recipe: &coordinator.Recipe{Spec: []byte("x"), File: "/x.yml"}}
	res := make([]coordinator.AttemptResult, len(sp))
	errs := make([]error, len(sp))
	var wg sync.WaitGroup
	for i, s := range sp {
		wg.Go(func() {
			res[i], errs[i] = ex.Run(ctx, coordinator.Attempt{RunID: runID, Task: task, Plan: plan, Stage: 1, Split: s, Number: 1})
		})
	}
	wg.Wait()
	return res, errs
}

func TestPartitionsRunOnWorkersExactlyOnce(t *testing.T) {
	env := startServer(t, t.TempDir(), "tok")
	w1, w2 := &fakeExec{runs: map[string]int{}, delay: 5 * time.Millisecond}, &fakeExec{runs: map[string]int{}, delay: 5 * time.Millisecond}
	startWorker(t, env, "tok", w1)
	startWorker(t, env, "tok", w2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex := env.srv.Executor(env.local)
	sp := splits(60)
	res, errs := runAll(ctx, ex, "r1", sp)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", sp[i].ID, err)
		}
		if res[i].Manifest == nil || res[i].Manifest.SplitID != sp[i].ID || lease.Token(res[i].Manifest.Attempt).Generation() != 1 {
			t.Fatalf("%s: result %+v", sp[i].ID, res[i].Manifest)
		}
	}
	if len(w1.runs) == 0 || len(w2.runs) == 0 {
		t.Errorf("work not spread: %d and %d partitions", len(w1.runs), len(w2.runs))
	}
	for _, s := range sp {
		if n := w1.runs[s.ID] + w2.runs[s.ID]; n != 1 {
			t.Errorf("%s ran %d times", s.ID, n)
		}
	}
	if err := ex.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := env.srv.cfg.Journal.Splits("r1", "t/1"); len(got) != 0 {
		t.Errorf("journal kept %d entries of a finished run", len(got))
	}
}

// A restarted coordinator (a new incarnation over the same journal) hands
// back the accepted attempts without running them again, and its tokens
// never collide with the old ones.
func TestResumeFromJournal(t *testing.T) {
	dir := t.TempDir()
	env := startServer(t, dir, "")
	w := &fakeExec{runs: map[string]int{}}
	stop := startWorker(t, env, "", w)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sp := splits(10)
	first, errs := runAll(ctx, env.srv.Executor(env.local), "r2", sp)
	if errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	stop()
	env.srv.Close()
	_ = env.srv.cfg.Journal.Close()

	env2 := startServer(t, dir, "") // no workers at all
	if g := env2.srv.cfg.Journal.Generation(); g != 2 {
		t.Fatalf("generation %d, want 2", g)
	}
	again, errs := runAll(ctx, env2.srv.Executor(env2.local), "r2", sp)
	if errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	for i := range sp {
		if again[i].Manifest.Attempt != first[i].Manifest.Attempt {
			t.Errorf("%s: attempt %d, journaled %d", sp[i].ID, again[i].Manifest.Attempt, first[i].Manifest.Attempt)
		}
	}
}

// A permanent error fails the task at once; a transient one is retried on
// the lease scheduler's terms.
func TestFailures(t *testing.T) {
	env := startServer(t, t.TempDir(), "")
	w := &fakeExec{runs: map[string]int{}, fail: map[string]error{
		"p001": connectors.Permanent(errors.New("column x not found")),
	}}
	startWorker(t, env, "", w)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, errs := runAll(ctx, env.srv.Executor(env.local), "r3", splits(3))
	if !errors.Is(errs[1], connectors.ErrPermanent) {
		t.Fatalf("p001: %v, want a permanent error", errs[1])
	}
	if time.Since(start) > 5*time.Second || w.runs["p001"] != 1 {
		t.Errorf("permanent error retried: %d runs in %s", w.runs["p001"], time.Since(start))
	}

	w2 := &fakeExec{runs: map[string]int{}, fail: map[string]error{"p000": errors.New("connection reset")}}
	env2 := startServer(t, t.TempDir(), "")
	startWorker(t, env2, "", w2)
	_, errs = runAll(ctx, env2.srv.Executor(env2.local), "r4", splits(1))
	if errs[0] == nil || w2.runs["p000"] < 2 {
		t.Errorf("transient failure: %v after %d runs, want retries then failure", errs[0], w2.runs["p000"])
	}
}

func TestAuthentication(t *testing.T) {
	env := startServer(t, t.TempDir(), "right-token")
	for _, tok := range []string{"", "wrong-token"} {
		cc, err := Dial(DialConfig{Addr: env.addr, Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewClient(cc).Register(context.Background(), &RegisterRequest{Worker: "w", Slots: 1})
		cc.Close()
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("token %q: %v, want Unauthenticated", tok, err)
		}
		if tok != "" && err != nil && (strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), "right-token")) {
			t.Errorf("the error shows a token: %v", err)
		}
	}
	// A large call with a wrong token is refused on its headers: its body
	// is never decoded.
	var decoded atomic.Int64
	testHookUnmarshal = func(n int) { decoded.Add(int64(n)) }
	defer func() { testHookUnmarshal = nil }()
	bad, err := Dial(DialConfig{Addr: env.addr, Token: "wrong-token"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewClient(bad).Complete(context.Background(), &CompleteRequest{Worker: "w", Partial: make([]byte, 32<<20)})
	bad.Close()
	if status.Code(err) != codes.Unauthenticated || decoded.Load() > 1<<20 {
		t.Errorf("32 MiB call with a wrong token: %v, %d bytes decoded", err, decoded.Load())
	}
	testHookUnmarshal = nil
	var ok atomic.Bool
	cc, _ := Dial(DialConfig{Addr: env.addr, Token: "right-token"})
	defer cc.Close()
	if _, err := NewClient(cc).Register(context.Background(), &RegisterRequest{Worker: "w", Slots: 1}); err == nil {
		ok.Store(true)
	}
	if !ok.Load() {
		t.Error("the right token was refused")
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "liminal-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// With a certificate the service speaks TLS only: a client trusting the
// certificate works, a plaintext client and one without the CA do not.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	opts, err := ServerOptions("tok", cert, key)
	if err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	srv, err := NewServer(Config{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	gs := grpc.NewServer(opts...)
	srv.Register(gs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()
	register := func(c DialConfig) error {
		c.Addr, c.Token = ln.Addr().String(), "tok"
		cc, err := Dial(c)
		if err != nil {
			return err
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = NewClient(cc).Register(ctx, &RegisterRequest{Worker: "w", Slots: 1})
		return err
	}
	if err := register(DialConfig{CAFile: cert}); err != nil {
		t.Errorf("TLS client trusting the certificate: %v", err)
	}
	if err := register(DialConfig{}); err == nil {
		t.Error("a plaintext client was served")
	}
	if err := register(DialConfig{TLS: true}); err == nil {
		t.Error("a client that does not trust the certificate was served")
	}
	if _, err := ServerOptions("tok", cert, ""); err == nil {
		t.Error("a certificate without a key was accepted")
	}
}
