package spec

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorString(t *testing.T) {
	tests := map[string]struct {
		err  Error
		want string
	}{
		"all":          {Error{File: "s.yml", Line: 3, Column: 5, Path: "sinks.out", Msg: "bad"}, "s.yml:3: sinks.out: bad"},
		"no line":      {Error{File: "s.yml", Path: "sinks.out", Msg: "bad"}, "s.yml: sinks.out: bad"},
		"no file":      {Error{Line: 3, Path: "sinks.out", Msg: "bad"}, "line 3: sinks.out: bad"},
		"no path":      {Error{File: "s.yml", Line: 1, Msg: "bad"}, "s.yml:1: bad"},
		"nothing else": {Error{Msg: "bad"}, "bad"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestErrorsAs(t *testing.T) {
	_, err := ParseWithEnv([]byte("name: t\n"), "s.yml", lookupTestEnv)
	wrapped := fmt.Errorf("check: %w", err)
	var errs Errors
	if !errors.As(wrapped, &errs) || len(errs) != 1 {
		t.Fatalf("errors.As(Errors) failed on %v", wrapped)
	}
	var one *Error
	if !errors.As(wrapped, &one) || one.Line != 1 {
		t.Fatalf("errors.As(*Error) = %v", one)
	}
}

func TestPaths(t *testing.T) {
	tests := map[string]struct {
		parent, name string
		want         string
	}{
		"top":        {"", "name", "name"},
		"nested":     {"sources.events", "uri", "sources.events.uri"},
		"dash":       {"sources", "my-src", "sources.my-src"},
		"dotted key": {"sources.events.options", "csv.delim", `sources.events.options["csv.delim"]`},
		"empty key":  {"sources", "", `sources[""]`},
		"top quoted": {"", "a b", `["a b"]`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := joinPath(tc.parent, tc.name)
			if got != tc.want {
				t.Fatalf("joinPath(%q, %q) = %q, want %q", tc.parent, tc.name, got, tc.want)
			}
			if p := parentPath(got); p != tc.parent {
				t.Errorf("parentPath(%q) = %q, want %q", got, p, tc.parent)
			}
		})
	}
}

func TestParentPath(t *testing.T) {
	tests := map[string]struct {
		path, want string
	}{
		"index":          {"pipelines[0].tasks[1]", "pipelines[0].tasks"},
		"field of index": {"pipelines[0].tasks[1].sql_file", "pipelines[0].tasks[1]"},
		"quoted dots":    {`a["x.y[z]"].b`, `a["x.y[z]"]`},
		"quoted last":    {`a["x.y\"]"]`, "a"},
		"root":           {"name", ""},
		"empty":          {"", ""},
		"unterminated":   {"a.b[3", "a.b"},
		"bad quote":      {`a["x`, "a"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := parentPath(tc.path); got != tc.want {
				t.Errorf("parentPath(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
}

func TestErrorfPositions(t *testing.T) {
	const doc = `name: pos
sources:
  events:
    uri: data/events.csv
    options:
      csv.delim: ";"
sinks:
  out:
    uri: out/x.parquet
pipelines:
  - pipeline: p
    tasks:
      - task: first
        type: sql
        sql: SELECT 1
        sink: out
      - task: second
        type: sql
        sql: |
          SELECT *
          FROM events
        sink: out
`
	s, err := ParseWithEnv([]byte(doc), "pos.yml", lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		path string
		line int
	}{
		"root":                 {"", 1},
		"top field":            {"name", 1},
		"map entry":            {"sources.events", 3},
		"map value field":      {"sources.events.uri", 4},
		"quoted key":           {`sources.events.options["csv.delim"]`, 6},
		"list item":            {"pipelines[0].tasks[1]", 17},
		"block scalar key":     {"pipelines[0].tasks[1].sql", 19},
		"absent field":         {"pipelines[0].tasks[1].partition.by", 17},
		"absent list item":     {"pipelines[0].tasks[7].sink", 12},
		"unknown top":          {"nothing.here", 1},
		"malformed falls back": {"sinks.out[", 8},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := s.Line(tc.path); got != tc.line {
				t.Errorf("Line(%q) = %d, want %d", tc.path, got, tc.line)
			}
			e := s.Errorf(tc.path, "column %q not found", "age")
			want := fmt.Sprintf("pos.yml:%d: %s: column \"age\" not found", tc.line, tc.path)
			if tc.path == "" {
				want = fmt.Sprintf("pos.yml:%d: column \"age\" not found", tc.line)
			}
			if e.Error() != want {
				t.Errorf("Errorf() = %q, want %q", e.Error(), want)
			}
		})
	}

	var none *Spec
	if got := none.Errorf("x", "m").Error(); got != "x: m" {
		t.Errorf("nil spec Errorf = %q", got)
	}
	if got := (&Spec{File: "f.yml"}).Errorf("x", "m").Error(); got != "f.yml: x: m" {
		t.Errorf("hand-built spec Errorf = %q", got)
	}
}

func TestExpand(t *testing.T) {
	env := func(name string) (string, bool) {
		v, ok := map[string]string{"A": "alpha", "EMPTY": "", "B_2": "two"}[name]
		return v, ok
	}
	tests := map[string]struct {
		in       string
		want     string
		used     bool
		problems string
	}{
		"plain":              {in: "no refs", want: "no refs"},
		"dollar":             {in: "cost $5 and $$", want: "cost $5 and $$"},
		"var":                {in: "${A}", want: "alpha", used: true},
		"embedded":           {in: "x/${A}/${B_2}.csv", want: "x/alpha/two.csv", used: true},
		"default unused":     {in: "${A:-z}", want: "alpha", used: true},
		"default unset":      {in: "${NOPE:-z/y}", want: "z/y", used: true},
		"default empty":      {in: "${EMPTY:-z}", want: "z", used: true},
		"empty no default":   {in: "[${EMPTY}]", want: "[]", used: true},
		"empty default":      {in: "[${NOPE:-}]", want: "[]", used: true},
		"escape":             {in: "$${A}", want: "${A}"},
		"escape and var":     {in: "$${A}=${A}", want: "${A}=alpha", used: true},
		"unset":              {in: "${NOPE}/x", want: "/x", used: true, problems: `environment variable "NOPE" is not set`},
		"two unset":          {in: "${X}${Y}", want: "", used: true, problems: `environment variable "X" is not set; environment variable "Y" is not set`},
		"unterminated":       {in: "a${A", want: "a${A", used: true, problems: `unterminated "${" (write "$${" for a literal "${")`},
		"bad name":           {in: "${1A}", want: "", used: true, problems: `invalid environment variable name "1A" in "${1A}"`},
		"empty name":         {in: "${}", want: "", used: true, problems: `invalid environment variable name "" in "${}"`},
		"default with colon": {in: "${NOPE:-a:b}", want: "a:b", used: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, used, problems := expand(tc.in, env)
			if got != tc.want || used != tc.used || joinProblems(problems) != tc.problems {
				t.Errorf("expand(%q) = %q, %v, %q; want %q, %v, %q", tc.in, got, used, problems, tc.want, tc.used, tc.problems)
			}
		})
	}
}

func joinProblems(p []string) string {
	out := ""
	for i, s := range p {
		if i > 0 {
			out += "; "
		}
		out += s
	}
	return out
}
