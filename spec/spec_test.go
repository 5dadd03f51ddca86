package spec

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files under testdata")

// testEnv is the environment the testdata specs are interpolated with.
var testEnv = map[string]string{
	"LAKE_DIR":     "/data/lake",
	"OUT_DIR":      "/data/out",
	"OUT_FORMAT":   "", // set but empty: ${OUT_FORMAT:-parquet} gives parquet
	"TARGET_BYTES": "134217728",
	"REGION":       "us-east-1",
}

func lookupTestEnv(name string) (string, bool) {
	v, ok := testEnv[name]
	return v, ok
}

// checkGolden compares got with the golden file, or rewrites it.
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *rewrite {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./spec -rewrite to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (run go test ./spec -rewrite and review the diff)\n--- got ---\n%s--- want ---\n%s", golden, got, want)
	}
}

func TestValidSpecs(t *testing.T) {
	t.Chdir("testdata") // so that Dir, and sql_file lookups, are relative to testdata
	for name := range testdataFilesIn(t, "valid/*.yml") {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParseWithEnv(data, name, lookupTestEnv)
			if err != nil {
				t.Fatalf("unexpected error:\n%v", err)
			}
			for _, p := range s.Pipelines {
				for _, task := range p.Tasks {
					if task.Type != "sql" {
						continue
					}
					if q, err := task.Query(s); err != nil || q == "" {
						t.Errorf("task %s: Query() = %q, %v", task.Task, q, err)
					}
				}
			}
			// The golden file holds the decoded spec, interpolated and
			// with merges applied, written back as YAML.
			got, err := yaml.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.TrimSuffix(name, ".yml")+".golden", got)
		})
	}
}

func TestInvalidSpecs(t *testing.T) {
	t.Chdir("testdata")
	for name := range testdataFilesIn(t, "invalid/*.yml") {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParseWithEnv(data, name, lookupTestEnv)
			if err == nil {
				t.Fatal("no error")
			}
			if s != nil {
				t.Error("got a spec along with the error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, not Errors: %v", err, err)
			}
			for i := 1; i < len(errs); i++ {
				if errs[i].Line < errs[i-1].Line {
					t.Errorf("errors not sorted by line:\n%v", err)
				}
			}
			for _, e := range errs {
				if e.File != name || e.Msg == "" {
					t.Errorf("bad error %#v", e)
				}
			}
			checkGolden(t, strings.TrimSuffix(name, ".yml")+".golden", []byte(err.Error()+"\n"))
		})
	}
}

// testdataFilesIn lists the files matching pattern in the working directory.
func testdataFilesIn(t *testing.T, pattern string) map[string]bool {
	t.Helper()
	paths, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no files match %s", pattern)
	}
	files := map[string]bool{}
	for _, p := range paths {
		files[filepath.ToSlash(p)] = true
	}
	return files
}

func TestLoad(t *testing.T) {
	t.Setenv("LAKE_DIR", "/from/os/env")
	t.Setenv("OUT_DIR", "/out")
	s, err := Load(filepath.Join("testdata", "valid", "env.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sources["events"].URI; got != "/from/os/env/events/*.parquet" {
		t.Errorf("events uri = %q", got)
	}
	if want := filepath.Join("testdata", "valid", "env.yml"); s.File != want {
		t.Errorf("File = %q, want %q", s.File, want)
	}

	s, err = Load(filepath.Join("testdata", "valid", "sql_file.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("testdata", "valid"); s.Dir != want {
		t.Errorf("Dir = %q, want %q", s.Dir, want)
	}
	q, err := s.Pipelines[0].Tasks[0].Query(s)
	if err != nil || !strings.Contains(q, "FROM orders") {
		t.Errorf("Query() = %q, %v", q, err)
	}

	_, err = Load(filepath.Join("testdata", "no-such-spec.yml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want fs.ErrNotExist", err)
	}
}

func TestParseUsesOSEnvironment(t *testing.T) {
	t.Setenv("LIMINAL_TEST_URI", "data/x.csv")
	s, err := Parse([]byte(specWithSourceURI("${LIMINAL_TEST_URI}")), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sources["x"].URI; got != "data/x.csv" {
		t.Errorf("uri = %q", got)
	}
	if s.File != "" || s.Dir != "" {
		t.Errorf("File, Dir = %q, %q; want empty", s.File, s.Dir)
	}
}

func specWithSourceURI(uri string) string {
	return `name: t
sources:
  x:
    uri: ` + uri + `
services:
  - service: s
    type: http_inference
`
}

func TestParseMessages(t *testing.T) {
	tests := map[string]struct {
		yaml string
		file string
		want string
	}{
		"no file name": {
			yaml: "name: t\nsinks: 3\n",
			want: "line 1: spec defines no pipelines and no services; add at least one\n" +
				"line 2: sinks: expected a mapping, found integer 3",
		},
		"unknown field with hint": {
			yaml: "name: t\nservices:\n  - service: s\n    typ: http_inference\n",
			file: "s.yml",
			want: `s.yml:3: services[0]: missing required field "type"` + "\n" +
				`s.yml:4: services[0]: unknown field "typ" (did you mean "type"?)`,
		},
		"unknown field without hint": {
			yaml: "name: t\nservices: [{service: s, type: http_inference, colour: red}]\n",
			file: "s.yml",
			want: `s.yml:2: services[0]: unknown field "colour"`,
		},
		"quoted map key in path": {
			yaml: "name: t\nsources:\n  a.b:\n    uri: x\nservices: [{service: s, type: http_inference}]\n",
			file: "s.yml",
			want: `s.yml:3: sources["a.b"]: invalid source name "a.b": must match ^[A-Za-z_][A-Za-z0-9_]*$`,
		},
		"alias of a list": {
			yaml: "name: t\nsinks:\n  o: {uri: o.csv}\npipelines:\n  - pipeline: a\n    tasks: &t [{task: x, type: sql, sql: s, sink: o}]\n  - pipeline: b\n    tasks: *t\n  - pipeline: a\n    tasks: *t\n",
			file: "s.yml",
			want: `s.yml:9: pipelines[2].pipeline: duplicate pipeline name "a" (first defined at line 5)`,
		},
		"self merge": {
			yaml: "name: t\nsinks:\n  o: &o {uri: o.csv, <<: *o}\nservices: [{service: s, type: http_inference}]\n",
			file: "s.yml",
			want: `s.yml:3: sinks.o: merge key (<<) refers to the mapping it is in`,
		},
		"integer out of range": {
			yaml: "name: t\nsinks: {o: {uri: o.csv}}\npipelines:\n- pipeline: p\n  tasks:\n  - {task: x, type: sql, sql: s, sink: o, partition: {max_partitions: 99999999999999999999}}\n",
			file: "s.yml",
			want: `s.yml:6: pipelines[0].tasks[0].partition.max_partitions: expected an integer, found number 99999999999999999999`,
		},
		"non-string key": {
			yaml: "name: t\n[a]: b\nservices: [{service: s, type: http_inference}]\n",
			file: "s.yml",
			want: `s.yml:2: mapping keys must be strings, found a list`,
		},
		"null values are absent": {
			yaml: "name: t\nsources:\nsinks: ~\nservices:\n  - service: s\n    type: http_inference\n    listen:\n",
			file: "s.yml",
			want: "",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseWithEnv([]byte(tc.yaml), tc.file, lookupTestEnv)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestPipeline(t *testing.T) {
	one := &Spec{Pipelines: []Pipeline{{Pipeline: "a"}}}
	two := &Spec{Pipelines: []Pipeline{{Pipeline: "a"}, {Pipeline: "b"}}}
	tests := map[string]struct {
		spec    *Spec
		name    string
		want    string
		wantErr string
	}{
		"only pipeline":   {spec: one, want: "a"},
		"named":           {spec: two, name: "b", want: "b"},
		"several":         {spec: two, wantErr: "spec defines 2 pipelines, choose one of: a, b"},
		"unknown":         {spec: two, name: "c", wantErr: `unknown pipeline "c" (known: a, b)`},
		"none":            {spec: &Spec{}, wantErr: "spec defines no pipelines"},
		"none with name":  {spec: &Spec{}, name: "a", wantErr: "spec defines no pipelines"},
		"named among one": {spec: one, name: "a", want: "a"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := tc.spec.Pipeline(tc.name)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Pipeline != tc.want {
				t.Errorf("got pipeline %q, want %q", p.Pipeline, tc.want)
			}
		})
	}
	p, _ := two.Pipeline("b")
	if p != &two.Pipelines[1] {
		t.Error("Pipeline does not point into the spec")
	}
}

func TestQuery(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "q.sql"), []byte("SELECT 42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blank.sql"), []byte("\n \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Spec{Dir: dir}
	tests := map[string]struct {
		task    Task
		want    string
		wantErr string
	}{
		"inline":        {task: Task{Task: "t", SQL: "SELECT 1"}, want: "SELECT 1"},
		"relative file": {task: Task{Task: "t", SQLFile: "q.sql"}, want: "SELECT 42\n"},
		"absolute file": {task: Task{Task: "t", SQLFile: filepath.Join(dir, "q.sql")}, want: "SELECT 42\n"},
		"missing file":  {task: Task{Task: "t", SQLFile: "nope.sql"}, wantErr: "no such file"},
		"blank file":    {task: Task{Task: "t", SQLFile: "blank.sql"}, wantErr: "is empty"},
		"blank sql":     {task: Task{Task: "t", SQL: "  "}, wantErr: "sql is empty"},
		"neither":       {task: Task{Task: "t"}, wantErr: "neither sql nor sql_file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.task.Query(s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Query() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestInputs(t *testing.T) {
	s := &Spec{Sources: map[string]Source{"b": {}, "a": {}, "c": {}}}
	tests := map[string]struct {
		task Task
		want string
	}{
		"explicit": {task: Task{Sources: []string{"c", "a"}}, want: "c,a"},
		"all":      {task: Task{}, want: "a,b,c"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := strings.Join(tc.task.Inputs(s), ","); got != tc.want {
				t.Errorf("Inputs() = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := map[string]struct {
		a, b string
		want int
	}{
		"equal":        {"format", "format", 0},
		"deletion":     {"formt", "format", 1},
		"substitution": {"mods", "mode", 1},
		"swap":         {"fromat", "format", 2},
		"empty":        {"", "uri", 3},
		"unrelated":    {"colour", "uri", 5},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := editDistance(tc.a, tc.b); got != tc.want {
				t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	// Aliases of aliases: 100 pipelines of 100 tasks of 100 sources would
	// decode a million values from a few kilobytes.
	var b strings.Builder
	b.WriteString("name: bomb\nsinks: {o: {uri: o.csv}}\nsources: {a: {uri: a.csv}}\npipelines:\n")
	b.WriteString("  - pipeline: p0\n    tasks: &ts\n      - &t {task: t, type: sql, sql: s, sink: o, sources: &s [a" + strings.Repeat(", a", 99) + "]}\n")
	b.WriteString("      - *t" + strings.Repeat("\n      - *t", 98) + "\n")
	for i := 1; i < 100; i++ {
		fmt.Fprintf(&b, "  - {pipeline: p%d, tasks: *ts}\n", i)
	}
	start := time.Now()
	_, err := ParseWithEnv([]byte(b.String()), "bomb.yml", lookupTestEnv)
	if err == nil || !strings.Contains(err.Error(), "excessive aliasing") {
		t.Errorf("alias bomb: error = %v, want excessive aliasing", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("alias bomb took %v", d)
	}

	// Thousands of problems are cut short.
	b.Reset()
	b.WriteString("name: many\nservices:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  - {service: s%d, type: nope}\n", i)
	}
	_, err = ParseWithEnv([]byte(b.String()), "many.yml", lookupTestEnv)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != maxErrors+1 {
		t.Fatalf("got %d problems, want %d", len(errs), maxErrors+1)
	}
	if got := errs[maxErrors].Error(); got != "many.yml: 500 more problems not shown" {
		t.Errorf("last problem = %q", got)
	}
}

func TestListNames(t *testing.T) {
	tests := map[string]struct {
		n    int
		want string
	}{
		"few":  {n: 3, want: "n0, n1, n2"},
		"many": {n: 25, want: "n0, n1, n2, n3, n4, n5, n6, n7, n8, n9, n10, n11, n12, n13, n14, n15, n16, n17, n18, n19, and 5 more"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			names := make([]string, tc.n)
			for i := range names {
				names[i] = fmt.Sprintf("n%d", i)
			}
			if got := listNames(names); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDocuments(t *testing.T) {
	const ok = "name: t\nservices: [{service: s, type: http_inference}]\n"
	tests := map[string]struct {
		yaml string
		want string
	}{
		"leading marker":  {yaml: "---\n" + ok},
		"trailing marker": {yaml: ok + "---\n"},
		"trailing null":   {yaml: ok + "--- ~\n"},
		"two documents":   {yaml: ok + "---\nname: u\n", want: "d.yml:3: a spec file holds one YAML document, found a second one"},
		"null document":   {yaml: "~\n", want: "d.yml: spec is empty"},
		"scalar document": {yaml: "hello\n", want: `d.yml:1: a spec is a mapping with name, sources, sinks, pipelines and services, found string "hello"`},
		"bad second":      {yaml: ok + "---\n[\n", want: "d.yml:4: did not find expected node content"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseWithEnv([]byte(tc.yaml), "d.yml", lookupTestEnv)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
