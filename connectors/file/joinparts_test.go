package file

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liminal-data/liminal/connectors"
)

// TestJoinParts: the commit of a single CSV file joins the partitions'
// parts in split order under the first header; empty parts and parts of
// only a header add nothing; a part whose header differs is refused and
// nothing is committed.
func TestJoinParts(t *testing.T) {
	dir := t.TempDir()
	part := func(name, body string) connectors.StagedFile {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return connectors.StagedFile{Staged: p, Final: name, Bytes: int64(len(body))}
	}
	header := "\"a,\"\"b\"\"\",\"c\nd\"\n"
	open := func(uri string) *Sink {
		s, err := OpenSink(context.Background(), connectors.SinkConfig{Name: "out", URI: uri, Mode: connectors.ModeOverwrite})
		if err != nil {
			t.Fatal(err)
		}
		return s.(*Sink)
	}
	run := connectors.Run{ID: "r1"}
	target := filepath.Join(dir, "out.csv")
	s := open(target)
	if !s.JoinsParts() || !open(filepath.Join(dir, "out.parquet")).JoinsParts() || open(filepath.Join(dir, "d")+"/").JoinsParts() {
		t.Fatal("JoinsParts: want true only for a single CSV or Parquet file")
	}
	if err := s.Prepare(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	staged := []connectors.Manifest{
		{SplitID: "s-0003", Rows: 1, Files: []connectors.StagedFile{part("p3.csv", header+"5,6\n")}},
		{SplitID: "s-0000", Rows: 0, Files: []connectors.StagedFile{part("p0.csv", "")}},
		{SplitID: "s-0001", Rows: 2, Files: []connectors.StagedFile{part("p1.csv", header+"1,2\n\"x\ny\",3\n")}},
		{SplitID: "s-0002", Rows: 0, Files: []connectors.StagedFile{part("p2.csv", header)}},
	}
	c, err := s.Commit(context.Background(), run, staged)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(target)
	want := header + "1,2\n\"x\ny\",3\n" + "5,6\n"
	if string(got) != want || c.Rows != 3 || len(c.Files) != 1 || c.Bytes != int64(len(want)) {
		t.Errorf("joined %q (rows %d, bytes %d, files %v), want %q", got, c.Rows, c.Bytes, c.Files, want)
	}

	run2 := connectors.Run{ID: "r2"}
	if err := s.Prepare(context.Background(), run2); err != nil {
		t.Fatal(err)
	}
	bad := []connectors.Manifest{
		{SplitID: "s-0", Rows: 1, Files: []connectors.StagedFile{part("q0.csv", "a,b\n1,2\n")}},
		{SplitID: "s-1", Rows: 1, Files: []connectors.StagedFile{part("q1.csv", "a,x\n3,4\n")}},
	}
	if _, err := s.Commit(context.Background(), run2, bad); err == nil || !strings.Contains(err.Error(), "header differs") {
		t.Errorf("mismatched headers: %v", err)
	}
	if again, _ := os.ReadFile(target); string(again) != want {
		t.Errorf("a failed commit changed the file: %q", again)
	}
}

// FuzzCSVHeader: the header csvHeader finds is a prefix of the file that
// ends a record (with its line end), or there is an error; never a panic.
func FuzzCSVHeader(f *testing.F) {
	f.Add([]byte("a,b\n1,2\n"), ",")
	f.Add([]byte("\"a\nb\",c\r\n1,2\n"), ",")
	f.Add([]byte(""), ";")
	f.Add([]byte("\"unterminated"), ",")
	f.Fuzz(func(t *testing.T, body []byte, delim string) {
		if len(delim) > 4 {
			return
		}
		p := filepath.Join(t.TempDir(), "p.csv")
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		h, err := csvHeader(p, delim)
		if err != nil {
			return
		}
		if !strings.HasPrefix(string(body), string(h)) {
			t.Fatalf("header %q is not a prefix of %q", h, body)
		}
	})
}
