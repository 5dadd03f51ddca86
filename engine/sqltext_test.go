package engine

import (
	"strings"
	"testing"
)

func TestTrimStatement(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"plain":             {"SELECT 1", "SELECT 1"},
		"semicolon":         {"SELECT 1;", "SELECT 1"},
		"blanks":            {"  SELECT 1 ;\n\n", "  SELECT 1"},
		"comment after":     {"SELECT 1; -- done\n", "SELECT 1"},
		"comment no ;":      {"SELECT 1 -- done", "SELECT 1"},
		"block comment":     {"SELECT 1 /* x; */ ;", "SELECT 1"},
		"string with ;":     {"SELECT ';' AS s;", "SELECT ';' AS s"},
		"string with --":    {"SELECT '--' AS s -- c", "SELECT '--' AS s"},
		"doubled quote":     {"SELECT 'it''s;' ;", "SELECT 'it''s;'"},
		"identifier":        {`SELECT 1 AS "a;--b";`, `SELECT 1 AS "a;--b"`},
		"dollar":            {"SELECT $$a;b$$;", "SELECT $$a;b$$"},
		"tagged dollar":     {"SELECT $x$ ; $x$ ;", "SELECT $x$ ; $x$"},
		"inner comment":     {"SELECT 1 -- c\n+ 2;", "SELECT 1 -- c\n+ 2"},
		"two statements":    {"SELECT 1; SELECT 2;", "SELECT 1; SELECT 2"},
		"unterminated":      {"SELECT 'x", "SELECT 'x"},
		"only comment":      {"-- nothing", ""},
		"cte":               {"WITH a AS (SELECT 1) SELECT * FROM a;\n", "WITH a AS (SELECT 1) SELECT * FROM a"},
		"division not cmnt": {"SELECT 4/2;", "SELECT 4/2"},
	}
	for name, tt := range tests {
		if got := TrimStatement(tt.in); got != tt.want {
			t.Errorf("%s: TrimStatement(%q) = %q, want %q", name, tt.in, got, tt.want)
		}
	}
}

// FuzzTrimStatement: the result is a prefix of the input, and trimming is
// idempotent.
func FuzzTrimStatement(f *testing.F) {
	for _, s := range []string{"SELECT 1;", "SELECT ';' -- x\n;", "SELECT $$;$$", "/* ; */", "'a''b'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got := TrimStatement(q)
		if !strings.HasPrefix(q, got) {
			t.Fatalf("%q is not a prefix of %q", got, q)
		}
		if again := TrimStatement(got); again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q", q, got, again)
		}
	})
}
