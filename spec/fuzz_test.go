package spec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, and that every failure is an
// Errors whose problems all have text.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"valid/*.yml", "invalid/*.yml"} {
		paths, err := filepath.Glob(filepath.Join("testdata", pattern))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("a: &a {b: *a, <<: *a}"))
	f.Add([]byte("name: x\nsources: {s: {uri: '${A:-${B}}'}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseWithEnv(data, "fuzz.yml", lookupTestEnv)
		if err == nil {
			if s == nil {
				t.Fatal("nil spec and nil error")
			}
			_, _ = s.Pipeline("")
			_ = s.Errorf("pipelines[0].tasks[0].sql", "check")
			return
		}
		if s != nil {
			t.Error("spec returned along with an error")
		}
		if err.Error() == "" {
			t.Fatal("empty error text")
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is %T, not a non-empty Errors: %v", err, err)
		}
		for _, e := range errs {
			if e.Msg == "" || e.Error() == "" {
				t.Fatalf("problem without text: %#v", e)
			}
		}
	})
}
