package conformance

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
)

// SinkHarness is what a sink connector's test provides.
type SinkHarness struct {
	// Open returns a new sink object for target (a fresh name per test, or
	// the same name to reopen it as a new process would) in mode, with key
	// columns for ModeUpsert.
	Open func(t *testing.T, target string, mode connectors.Mode, keys []string) connectors.ArrowSink
	// Read returns the rows of target projected to cols, in canonical form
	// (see Value); ok is false when the target does not exist.
	Read func(t *testing.T, target string, cols []string) (rows [][]any, ok bool)
	// Staging lists what is left of the staging of target (tables, files);
	// it must be empty after Commit and after Abort.
	Staging func(t *testing.T, target string) []string
	// Modes lists the modes the sink supports besides ModeAppend; the
	// suite runs the tests of ModeOverwrite, ModeUpsert and ModeError only
	// when listed.
	Modes []connectors.Mode
}

// RunSink runs the sink suite.
func RunSink(t *testing.T, h SinkHarness) {
	ctx := context.Background()
	full := Fixture(0, 1500, "a")
	defer full.Release()
	want := Rows(full)

	// stage writes rec split in parts, one writer per part, and returns
	// the manifests. nil schemas are passed to every other writer, as the
	// worker does.
	stage := func(t *testing.T, s connectors.ArrowSink, run connectors.Run, rec arrow.RecordBatch, parts, attempt int) []connectors.Manifest {
		t.Helper()
		var ms []connectors.Manifest
		n := rec.NumRows()
		for p := 0; p < parts; p++ {
			lo, hi := n*int64(p)/int64(parts), n*int64(p+1)/int64(parts)
			sp := partition.Split{ID: fmt.Sprintf("t-%05d", p), Source: "t"}
			var sc *arrow.Schema
			if p%2 == 1 {
				sc = rec.Schema()
			}
			w, err := s.Writer(ctx, run, sp, attempt, sc)
			if err != nil {
				t.Fatal(err)
			}
			// batches of uneven sizes
			for at, size := lo, int64(1); at < hi; size = size*3 + 1 {
				end := min(hi, at+size)
				b := rec.NewSlice(at, end)
				err := w.Write(ctx, b)
				b.Release()
				if err != nil {
					t.Fatal(err)
				}
				at = end
			}
			m, err := w.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.SplitID != sp.ID || m.Attempt != attempt || m.Rows != hi-lo {
				t.Fatalf("manifest %+v, want split %s attempt %d rows %d", m, sp.ID, attempt, hi-lo)
			}
			ms = append(ms, m)
		}
		return ms
	}
	commit := func(t *testing.T, s connectors.ArrowSink, run connectors.Run, ms []connectors.Manifest) connectors.Committed {
		t.Helper()
		c, err := s.Commit(ctx, run, ms)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	check := func(t *testing.T, target string, want [][]any) {
		t.Helper()
		got, ok := h.Read(t, target, FixtureColumns)
		if !ok {
			t.Fatalf("target %s does not exist", target)
		}
		if d := Diff(got, want); d != "" {
			t.Fatal(d)
		}
	}
	noStaging := func(t *testing.T, target string) {
		t.Helper()
		if h.Staging == nil {
			return
		}
		if left := h.Staging(t, target); len(left) > 0 {
			t.Fatalf("staging left behind: %v", left)
		}
	}
	prepare := func(t *testing.T, s connectors.Sink, run connectors.Run) {
		t.Helper()
		if err := s.Prepare(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	has := func(m connectors.Mode) bool { return slices.Contains(h.Modes, m) }

	t.Run("append commit idempotent", func(t *testing.T) {
		target := "conf_append"
		run := connectors.Run{ID: "run-1"}
		s := h.Open(t, target, connectors.ModeAppend, nil)
		if d := s.Describe(); d == "" {
			t.Error("empty Describe")
		}
		prepare(t, s, run)
		ms := stage(t, s, run, full, 3, 1)
		if _, ok := h.Read(t, target, FixtureColumns); ok {
			if rows, _ := h.Read(t, target, FixtureColumns); len(rows) > 0 {
				t.Fatal("staged rows are visible before Commit")
			}
		}
		c := commit(t, s, run, ms)
		if c.AlreadyCommitted || c.Rows != int64(len(want)) {
			t.Fatalf("Committed %+v, want %d rows, not already committed", c, len(want))
		}
		check(t, target, want)
		noStaging(t, target)

		c = commit(t, s, run, ms)
		if !c.AlreadyCommitted {
			t.Fatalf("second Commit: %+v, want AlreadyCommitted", c)
		}
		check(t, target, want)

		// A re-run with the same run id (a new process) writes and commits
		// again: nothing changes.
		s2 := h.Open(t, target, connectors.ModeAppend, nil)
		prepare(t, s2, run)
		ms2 := stage(t, s2, run, full, 2, 1)
		c = commit(t, s2, run, ms2)
		if !c.AlreadyCommitted {
			t.Fatalf("re-run Commit: %+v, want AlreadyCommitted", c)
		}
		check(t, target, want)
		noStaging(t, target)

		// Another run appends.
		more := Fixture(1500, 1600, "b")
		defer more.Release()
		run2 := connectors.Run{ID: "run-2"}
		prepare(t, s2, run2)
		c = commit(t, s2, run2, stage(t, s2, run2, more, 1, 1))
		if c.AlreadyCommitted || c.Rows != 100 {
			t.Fatalf("Committed %+v", c)
		}
		check(t, target, append(slices.Clone(want), Rows(more)...))
	})

	t.Run("retried attempts", func(t *testing.T) {
		target := "conf_retry"
		run := connectors.Run{ID: "run-retry"}
		s := h.Open(t, target, connectors.ModeAppend, nil)
		prepare(t, s, run)
		sp := partition.Split{ID: "t-00000"}
		// attempt 1 fails midway
		w, err := s.Writer(ctx, run, sp, 1, full.Schema())
		if err != nil {
			t.Fatal(err)
		}
		b := full.NewSlice(0, 10)
		if err := w.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		b.Release()
		if err := w.Abort(ctx); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(ctx); err != nil {
			t.Fatalf("second Abort: %v", err)
		}
		// attempts 2 and 3 both finish (3 lost its lease, say); only 2 counts.
		m2 := stage(t, s, run, full, 1, 2)
		_ = stage(t, s, run, full, 1, 3)
		commit(t, s, run, m2)
		check(t, target, want)
		noStaging(t, target)
	})

	t.Run("concurrent writers", func(t *testing.T) {
		target := "conf_concurrent"
		run := connectors.Run{ID: "run-c"}
		s := h.Open(t, target, connectors.ModeAppend, nil)
		prepare(t, s, run)
		const parts = 4
		ms := make([]connectors.Manifest, parts)
		errs := make([]error, parts)
		var wg sync.WaitGroup
		n := full.NumRows()
		for p := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w, err := s.Writer(ctx, run, partition.Split{ID: fmt.Sprintf("c-%d", p)}, 1, nil)
				if err != nil {
					errs[p] = err
					return
				}
				b := full.NewSlice(n*int64(p)/parts, n*int64(p+1)/parts)
				defer b.Release()
				if err := w.Write(ctx, b); err != nil {
					errs[p] = err
					return
				}
				ms[p], errs[p] = w.Close(ctx)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		commit(t, s, run, ms)
		check(t, target, want)
	})

	t.Run("crash between staging and commit", func(t *testing.T) {
		target := "conf_crash"
		run := connectors.Run{ID: "run-crash"}
		s := h.Open(t, target, connectors.ModeAppend, nil)
		prepare(t, s, run)
		_ = stage(t, s, run, full, 2, 1) // staged, then the process dies
		if rows, ok := h.Read(t, target, FixtureColumns); ok && len(rows) > 0 {
			t.Fatal("staged rows visible without a commit")
		}
		s2 := h.Open(t, target, connectors.ModeAppend, nil)
		prepare(t, s2, run)
		c := commit(t, s2, run, stage(t, s2, run, full, 2, 1))
		if c.AlreadyCommitted {
			t.Fatal("first commit reported as already committed")
		}
		check(t, target, want)
		noStaging(t, target)
	})

	t.Run("abort leaves target", func(t *testing.T) {
		target := "conf_abort"
		s := h.Open(t, target, connectors.ModeAppend, nil)
		run1 := connectors.Run{ID: "run-a1"}
		prepare(t, s, run1)
		commit(t, s, run1, stage(t, s, run1, full, 1, 1))
		run2 := connectors.Run{ID: "run-a2"}
		prepare(t, s, run2)
		_ = stage(t, s, run2, full, 2, 1)
		if err := s.Abort(ctx, run2); err != nil {
			t.Fatal(err)
		}
		if err := s.Abort(ctx, run2); err != nil {
			t.Fatalf("second Abort: %v", err)
		}
		check(t, target, want)
		noStaging(t, target)
	})

	t.Run("empty", func(t *testing.T) {
		for name, sc := range map[string]*arrow.Schema{"schema": full.Schema(), "no schema": nil} {
			t.Run(name, func(t *testing.T) {
				target := "conf_empty_" + map[bool]string{true: "s", false: "n"}[sc != nil]
				run := connectors.Run{ID: "run-e"}
				s := h.Open(t, target, connectors.ModeAppend, nil)
				prepare(t, s, run)
				w, err := s.Writer(ctx, run, partition.Split{ID: "e-0"}, 1, sc)
				if err != nil {
					t.Fatal(err)
				}
				m, err := w.Close(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if m.Rows != 0 {
					t.Fatalf("manifest %+v", m)
				}
				c := commit(t, s, run, []connectors.Manifest{m})
				if c.Rows != 0 {
					t.Fatalf("Committed %+v", c)
				}
				rows, ok := h.Read(t, target, FixtureColumns)
				if sc != nil && !ok {
					t.Fatal("no target table created for an empty result with a schema")
				}
				if len(rows) != 0 {
					t.Fatalf("%d rows", len(rows))
				}
				noStaging(t, target)
			})
		}
	})

	if has(connectors.ModeOverwrite) {
		t.Run("overwrite", func(t *testing.T) {
			target := "conf_overwrite"
			s := h.Open(t, target, connectors.ModeOverwrite, nil)
			run1 := connectors.Run{ID: "run-o1"}
			prepare(t, s, run1)
			commit(t, s, run1, stage(t, s, run1, full, 2, 1))
			check(t, target, want)
			other := Fixture(100, 400, "b")
			defer other.Release()
			run2 := connectors.Run{ID: "run-o2"}
			s2 := h.Open(t, target, connectors.ModeOverwrite, nil)
			prepare(t, s2, run2)
			ms := stage(t, s2, run2, other, 2, 1)
			check(t, target, want) // not before the commit
			commit(t, s2, run2, ms)
			check(t, target, Rows(other))
			// re-run of run2: no change, and an aborted run3 changes nothing
			prepare(t, s2, run2)
			if c := commit(t, s2, run2, stage(t, s2, run2, other, 1, 1)); !c.AlreadyCommitted {
				t.Fatalf("re-run: %+v", c)
			}
			run3 := connectors.Run{ID: "run-o3"}
			prepare(t, s2, run3)
			_ = stage(t, s2, run3, full, 1, 1)
			if err := s2.Abort(ctx, run3); err != nil {
				t.Fatal(err)
			}
			check(t, target, Rows(other))
			noStaging(t, target)
			// overwrite with nothing
			run4 := connectors.Run{ID: "run-o4"}
			prepare(t, s2, run4)
			w, err := s2.Writer(ctx, run4, partition.Split{ID: "x"}, 1, full.Schema())
			if err != nil {
				t.Fatal(err)
			}
			m, err := w.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
			commit(t, s2, run4, []connectors.Manifest{m})
			check(t, target, nil)
		})
	}

	if has(connectors.ModeError) {
		t.Run("error mode", func(t *testing.T) {
			target := "conf_errmode"
			s := h.Open(t, target, connectors.ModeError, nil)
			run1 := connectors.Run{ID: "run-x1"}
			prepare(t, s, run1)
			commit(t, s, run1, stage(t, s, run1, full, 1, 1))
			check(t, target, want)
			// the same run again is a no-op, not an error
			s2 := h.Open(t, target, connectors.ModeError, nil)
			if err := s2.Prepare(ctx, run1); err != nil {
				t.Fatalf("re-run of a committed run in error mode: %v", err)
			}
			run2 := connectors.Run{ID: "run-x2"}
			if err := s2.Prepare(ctx, run2); err == nil {
				ms := stage(t, s2, run2, full, 1, 1)
				if _, err := s2.Commit(ctx, run2, ms); err == nil {
					t.Fatal("mode error wrote into an existing non-empty target")
				}
				_ = s2.Abort(ctx, run2)
			}
			check(t, target, want)
			noStaging(t, target)
		})
	}

	if has(connectors.ModeUpsert) {
		t.Run("upsert", func(t *testing.T) {
			target := "conf_upsert"
			keys := []string{"id"}
			s := h.Open(t, target, connectors.ModeUpsert, keys)
			first := Fixture(0, 300, "a")
			defer first.Release()
			second := Fixture(200, 500, "bb")
			defer second.Release()
			run1 := connectors.Run{ID: "run-u1"}
			prepare(t, s, run1)
			commit(t, s, run1, stage(t, s, run1, first, 2, 1))
			run2 := connectors.Run{ID: "run-u2"}
			prepare(t, s, run2)
			commit(t, s, run2, stage(t, s, run2, second, 3, 1))
			var expect [][]any
			expect = append(expect, Rows(first)[:200]...)
			expect = append(expect, Rows(second)...)
			check(t, target, expect)
			// re-run of run1 must not bring the old values back
			s2 := h.Open(t, target, connectors.ModeUpsert, keys)
			prepare(t, s2, run1)
			if c := commit(t, s2, run1, stage(t, s2, run1, first, 1, 1)); !c.AlreadyCommitted {
				t.Fatalf("re-run: %+v", c)
			}
			check(t, target, expect)
			noStaging(t, target)
		})
	}
}
