package connectors

import (
	"context"
	"strings"
	"testing"
)

func TestScheme(t *testing.T) {
	tests := map[string]string{
		"data/x.parquet":            "file",
		"/abs/x":                    "file",
		"file:///tmp/x":             "file",
		"postgres://u@h/db?table=t": "postgres",
		"TRINO://h:8080/c/s":        "trino",
		"C:\\data\\x.csv":           "file",
		"weird path://x":            "file",
	}
	for in, want := range tests {
		if got := Scheme(in); got != want {
			t.Errorf("Scheme(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnknownScheme(t *testing.T) {
	_, err := OpenSource(context.Background(), SourceConfig{URI: "gopher://x"})
	if err == nil || !strings.Contains(err.Error(), `no source connector for "gopher"`) {
		t.Fatalf("%v", err)
	}
	_, err = OpenSink(context.Background(), SinkConfig{URI: "gopher://x"})
	if err == nil {
		t.Fatal("unknown sink scheme accepted")
	}
}

func TestRedact(t *testing.T) {
	got := Redact("postgres://bob:s3cret@db:5432/prod?table=t")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "bob") {
		t.Fatalf("Redact: %q", got)
	}
}

func FuzzScheme(f *testing.F) {
	for _, s := range []string{"data/*.parquet", "postgres://a:b@c/d", "://", "a://", "file://", "x:\\y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc := Scheme(s)
		if sc == "" {
			t.Fatalf("empty scheme for %q", s)
		}
		r := Redact(s)
		if strings.Contains(s, "@") && strings.Contains(r, ":") && r != s && strings.Contains(r, "xxxxx") == false {
			t.Fatalf("Redact changed %q to %q without masking", s, r)
		}
	})
}
