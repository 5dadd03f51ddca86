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
	tests := map[string]struct{ in, want string }{
		"parsed":        {"postgres://bob:s3cret@db:5432/prod?table=t", "postgres://bob:xxxxx@db:5432/prod?table=t"},
		"slash":         {"postgres://bob:s3/cret@db/prod", "postgres://bob:xxxxx@db/prod"},
		"hash":          {"postgres://bob:s3#cret@db/prod", "postgres://bob:xxxxx@db/prod"},
		"percent":       {"postgres://bob:s3%zzcret@db/prod", "postgres://bob:xxxxx@db/prod"},
		"space":         {"trino://bob:s3 cret@db:8080/cat", "trino://bob:xxxxx@db:8080/cat"},
		"at in pass":    {"hive://bob:p@ss@db:10000/x", "hive://bob:xxxxx@db:10000/x"},
		"no password":   {"postgres://bob@db/prod", "postgres://bob@db/prod"},
		"no userinfo":   {"data/*.parquet", "data/*.parquet"},
		"param":         {"postgres://db/prod?user=bob&password=s3cret&table=t", "postgres://db/prod?user=bob&password=xxxxx&table=t"},
		"dsn":           {"host=db user=bob password=s3cret dbname=x", "host=db user=bob password=xxxxx dbname=x"},
		"param and pwd": {"postgres://bob:a@db/x?sslpassword=k", "postgres://bob:xxxxx@db/x?sslpassword=xxxxx"},
	}
	for name, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("%s: Redact(%q) = %q, want %q", name, tt.in, got, tt.want)
		}
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
		if r != s && !strings.Contains(r, "xxxxx") {
			t.Fatalf("Redact changed %q to %q without masking", s, r)
		}
		// The userinfo's password, parsed or not, is masked.
		if i := strings.Index(s, "://"); i >= 0 {
			rest := s[i+3:]
			if at := strings.LastIndexByte(rest, '@'); at >= 0 {
				if c := strings.IndexByte(rest[:at], ':'); c >= 0 && !secretParam.MatchString(s[:i+3]+rest[:c]) {
					if want := s[:i+3] + rest[:c] + ":xxxxx@"; !strings.HasPrefix(r, want) {
						t.Fatalf("Redact(%q) = %q, want it to start with %q", s, r, want)
					}
				}
			}
		}
	})
}
