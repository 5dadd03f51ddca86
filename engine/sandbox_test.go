package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestSandbox: a sandboxed engine reads and writes inside its directories,
// scans Go-side tables, and refuses files elsewhere, globs elsewhere,
// extension installs and any change of its configuration.
func TestSandbox(t *testing.T) {
	inside, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "secret.csv")
	if err := os.WriteFile(secret, []byte("a\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Slots: 1, TempDir: t.TempDir(), Sandbox: &Sandbox{Dirs: []string{inside}}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	run := func(q string, out Output) error {
		_, err := e.Execute(ctx, Job{Query: q, Output: out})
		return err
	}
	in := filepath.Join(inside, "x.parquet")
	if err := run("SELECT 42 AS v", Output{CopyTo: quote(in) + " (FORMAT parquet)"}); err != nil {
		t.Fatalf("write inside: %v", err)
	}
	if err := run("SELECT * FROM read_parquet("+quote(in)+")", Output{Writer: &collect{}}); err != nil {
		t.Fatalf("read inside: %v", err)
	}
	if _, err := e.Execute(ctx, Job{Tables: []Table{{Name: "t", Reader: batches(memory.DefaultAllocator, 100, 10)}},
		Query: "SELECT count(*) FROM t", Output: Output{Writer: &collect{}}}); err != nil {
		t.Fatalf("Go-side table: %v", err)
	}
	for name, q := range map[string]string{
		"read outside":  "SELECT * FROM read_csv(" + quote(secret) + ")",
		"etc passwd":    "SELECT * FROM read_csv('/etc/passwd')",
		"glob outside":  "SELECT * FROM glob(" + quote(outside+"/*") + ")",
		"dotdot":        "SELECT * FROM read_csv(" + quote(inside+"/../"+filepath.Base(outside)+"/secret.csv") + ")",
		"unlock":        "SET lock_configuration = false",
		"widen":         "SET allowed_directories = ['/']",
		"reopen access": "SET enable_external_access = true",
		"install":       "INSTALL httpfs",
		"attach":        "ATTACH " + quote(filepath.Join(outside, "db.duckdb")),
	} {
		err := run(q, Output{Writer: &collect{}})
		if err == nil {
			t.Errorf("%s: %s ran", name, q)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
	if err := run("SELECT 1 AS v", Output{CopyTo: quote(filepath.Join(outside, "y.parquet")) + " (FORMAT parquet)"}); err == nil {
		t.Error("write outside: ran")
	}
	if _, err := os.Stat(filepath.Join(outside, "y.parquet")); err == nil {
		t.Error("write outside: the file exists")
	}
}
