package file

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liminal-data/liminal/connectors"
)

// TestOverwriteRefusals: an overwrite never targets the root, the home
// directory, the working directory or its ancestors, or a directory that
// holds a source of the run, forced or not; a non-empty directory that
// Liminal did not write is refused unless forced; one with our _SUCCESS
// manifest, an empty one and a missing one are fine. Nothing is touched by
// a refusal.
func TestOverwriteRefusals(t *testing.T) {
	root := t.TempDir()
	wd := filepath.Join(root, "work")
	data := filepath.Join(wd, "data")
	foreign := filepath.Join(root, "foreign")
	ours := filepath.Join(root, "ours")
	empty := filepath.Join(root, "empty")
	for _, d := range []string{data, foreign, ours, empty} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, body := range map[string]string{
		filepath.Join(data, "events.parquet"): "input",
		filepath.Join(foreign, "thesis.tex"):  "years of work",
		filepath.Join(ours, "part-0.parquet"): "x",
		filepath.Join(ours, SuccessName):      `{"run_id":"r0"}`,
		filepath.Join(root, "src", "a.csv"):   "a\n1\n",
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(wd)
	home, _ := os.UserHomeDir()
	open := func(uri string, force bool, protect ...string) error {
		_, err := OpenSink(context.Background(), connectors.SinkConfig{Name: "out", URI: uri, Mode: connectors.ModeOverwrite,
			BaseDir: wd, Protect: protect, Force: force})
		return err
	}
	srcs := []string{connectors.LocalPath("data/*.parquet", wd), connectors.LocalPath(filepath.Join(root, "src", "a.csv"), wd)}
	for name, tt := range map[string]struct {
		uri     string
		protect []string
		why     string
	}{
		"working dir":      {".", nil, "working directory"},
		"working dir /":    {"./", nil, "working directory"},
		"parent":           {"..", nil, "working directory"},
		"root":             {"/", nil, "root"},
		"home":             {home, nil, "home"},
		"holds a source":   {"data", srcs, "which this run reads"},
		"source parent":    {filepath.Join(root, "src") + "/", srcs, "which this run reads"},
		"state dir parent": {filepath.Join(root, "var") + "/", []string{filepath.Join(root, "var", "state")}, "which this run reads"},
	} {
		for _, force := range []bool{false, true} {
			err := open(tt.uri, force, tt.protect...)
			if err == nil || !strings.Contains(err.Error(), tt.why) {
				t.Errorf("%s (force %t): err %v, want a refusal naming %q", name, force, err, tt.why)
			}
		}
	}
	if err := open(foreign, false); err == nil || !strings.Contains(err.Error(), "--force-overwrite") {
		t.Errorf("foreign directory: err %v, want a refusal that names --force-overwrite", err)
	}
	if err := open(foreign, true); err != nil {
		t.Errorf("foreign directory, forced: %v", err)
	}
	for _, d := range []string{ours, empty, filepath.Join(root, "missing")} {
		if err := open(d, false, srcs...); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
	for _, p := range []string{filepath.Join(data, "events.parquet"), filepath.Join(foreign, "thesis.tex")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s is gone: %v", p, err)
		}
	}
}

// TestOverwriteForeignAtCommit: a directory that becomes foreign after the
// sink was opened (someone else's files appear) is refused at commit, and
// stays as it was.
func TestOverwriteForeignAtCommit(t *testing.T) {
	target := filepath.Join(t.TempDir(), "out")
	s, err := OpenSink(context.Background(), connectors.SinkConfig{Name: "out", URI: target + "/", Mode: connectors.ModeOverwrite})
	if err != nil {
		t.Fatal(err)
	}
	run := connectors.Run{ID: "r1"}
	if err := s.Prepare(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(context.Background(), run, nil); err == nil {
		t.Fatal("commit overwrote a directory Liminal did not write")
	}
	if b, err := os.ReadFile(filepath.Join(target, "notes.txt")); err != nil || string(b) != "mine" {
		t.Fatalf("notes.txt: %q %v", b, err)
	}
}

// TestPlantedJournal: a commit journal written into a sink's staging by
// someone else, pointing outside the sink, is refused by the next run's
// recovery, and nothing it names is removed or moved.
func TestPlantedJournal(t *testing.T) {
	root := t.TempDir()
	victim := filepath.Join(root, "victim.txt")
	if err := os.WriteFile(victim, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(root, "out")
	open := func() connectors.Sink {
		s, err := OpenSink(context.Background(), connectors.SinkConfig{Name: "out", URI: target + "/", Mode: connectors.ModeOverwrite})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open().(*Sink)
	runDir := filepath.Join(s.stagingRoot(), "evil")
	for name, j := range map[string]journal{
		"remove outside": {Run: "evil", Target: target, Trash: filepath.Join(runDir, "trash"), Remove: []string{"../victim.txt"}},
		"move from outside": {Run: "evil", Target: target, Trash: filepath.Join(runDir, "trash"),
			Moves: []move{{From: victim, To: filepath.Join(target, "x")}}},
		"move to outside": {Run: "evil", Target: target, Trash: filepath.Join(runDir, "trash"),
			Moves: []move{{From: filepath.Join(runDir, "a"), To: filepath.Join(root, "elsewhere")}}},
		"other target":  {Run: "evil", Target: root, Trash: filepath.Join(runDir, "trash"), Remove: []string{"victim.txt"}},
		"trash outside": {Run: "evil", Target: target, Trash: filepath.Join(root, "t")},
	} {
		if err := os.MkdirAll(runDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeJSON(filepath.Join(runDir, journalName), j); err != nil {
			t.Fatal(err)
		}
		err := open().Prepare(context.Background(), connectors.Run{ID: "r1"})
		if err == nil || !strings.Contains(err.Error(), "refusing commit journal") {
			t.Errorf("%s: Prepare: %v, want the journal refused", name, err)
		}
		if b, err := os.ReadFile(victim); err != nil || string(b) != "keep me" {
			t.Fatalf("%s: victim.txt: %q %v", name, b, err)
		}
		if err := os.RemoveAll(runDir); err != nil {
			t.Fatal(err)
		}
	}
}
