package file

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzManifests: the _SUCCESS manifest and the commit journal are read back
// after crashes and by other tools; no content may make their readers panic,
// and a journal that does not decode is an error, never a partial replay.
func FuzzManifests(f *testing.F) {
	f.Add([]byte(`{"run_id":"r","files":[{"path":"a.parquet","rows":1,"bytes":2}],"runs":["r"]}`))
	f.Add([]byte(`{"run":"r","target":"/x","moves":[{"from":"/a","to":"/b"}],"removed_done":true}`))
	f.Add([]byte(`{`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, SuccessName), data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = ReadSuccess(dir)
		// A journal whose moves point outside the sink is still only
		// replayed from its own staging tree here: the target does not exist.
		s := &Sink{uri: "fuzz", target: filepath.Join(dir, "out")}
		run := filepath.Join(s.stagingRoot(), "r")
		if err := os.MkdirAll(run, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(run, journalName), data, 0o644); err != nil {
			t.Fatal(err)
		}
		var j journal
		if jsonErr := decodeJournal(data, &j); jsonErr != nil {
			if err := s.recover(); err == nil {
				t.Fatal("an undecodable journal was accepted")
			}
		}
	})
}
