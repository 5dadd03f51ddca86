package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
)

// FixtureColumns are the columns of Fixture, in order.
var FixtureColumns = []string{"id", "grp", "name", "amount", "flag"}

// FixtureSchema is the schema of Fixture: a non-null int64 key and
// nullable int32, string, float64 and bool columns.
var FixtureSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "grp", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
}, nil)

// Fixture builds rows ids [lo, hi) of the suite's table. Every nullable
// column has NULLs (grp every 7th row, so a partition column has NULLs
// too); row values depend on the id and on tag, so that two fixtures with
// different tags differ in every non-key column. The caller releases it.
func Fixture(lo, hi int64, tag string) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, FixtureSchema)
	defer b.Release()
	for i := lo; i < hi; i++ {
		b.Field(0).(*array.Int64Builder).Append(i)
		if i%7 == 3 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.Int32Builder).Append(int32(i % 13 * 11))
		}
		if i%5 == 1 {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("%s name %d ü'\"", tag, i))
		}
		if i%9 == 2 {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.Float64Builder).Append(float64(i)*1.25 - 100 + float64(len(tag)))
		}
		if i%4 == 0 {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.BooleanBuilder).Append(i%3 == 0)
		}
	}
	return b.NewRecordBatch()
}

// TypeColumn is one row of a type-mapping table: a column of the system
// type SystemType, the Arrow type a source reports for it, and the
// canonical values (see Value) its rows read as, NULLs included.
type TypeColumn struct {
	Name       string
	SystemType string
	Arrow      arrow.DataType
	Values     []any
}

// Col makes a TypeColumn.
func Col(name, systemType string, typ arrow.DataType, values []any) TypeColumn {
	return TypeColumn{Name: name, SystemType: systemType, Arrow: typ, Values: values}
}

// SourceHarness is what a source connector's test provides.
type SourceHarness struct {
	// Load creates a fresh table holding the rows of rec (which may have
	// none; its schema is FixtureSchema) and returns a source over it,
	// configured with opts (nil: defaults).
	Load func(t *testing.T, rec arrow.RecordBatch, opts map[string]string) connectors.ArrowSource
	// Variants are named option sets the split tests also run with (a
	// partition column, a splitting method); the default options always
	// run.
	Variants map[string]map[string]string
	// Statements, when set, returns the statements the connector sent to
	// the system since the previous call; the projection test checks that
	// the columns not asked for are not selected.
	Statements func() []string
	// Types returns a source over a table with one column per system type
	// and what each column must read as.
	Types func(t *testing.T) (connectors.ArrowSource, []TypeColumn)
}

// SplitOptions are the partition options the split-coverage test runs.
var SplitOptions = map[string]partition.Options{
	"none":           {By: partition.None},
	"default":        {},
	"slots=4":        {Slots: 4},
	"target=700":     {TargetRows: 700},
	"target=97":      {TargetRows: 97},
	"target=10,max7": {TargetRows: 10, MaxPartitions: 7},
}

const fixtureRows = 2000

// RunSource runs the source suite.
func RunSource(t *testing.T, h SourceHarness) {
	ctx := context.Background()
	rec := Fixture(0, fixtureRows, "src")
	defer rec.Release()
	want := Rows(rec)

	t.Run("schema", func(t *testing.T) {
		src := h.Load(t, rec, nil)
		sc, err := src.Schema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		checkSchema(t, sc, FixtureSchema)
		if d := src.Describe(); d == "" {
			t.Error("empty Describe")
		}
	})

	t.Run("read all", func(t *testing.T) {
		src := h.Load(t, rec, nil)
		got := readSplits(t, src, partition.Options{By: partition.None}, nil)
		if d := Diff(got, want); d != "" {
			t.Fatal(d)
		}
	})

	t.Run("projection", func(t *testing.T) {
		src := h.Load(t, rec, nil)
		cols := []string{"name", "id"}
		if h.Statements != nil {
			h.Statements()
		}
		sp := wholeSplit(t, src)
		r, err := src.Read(ctx, sp, cols)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		var names []string
		for _, f := range r.Schema().Fields() {
			names = append(names, f.Name)
		}
		if strings.Join(names, ",") != "name,id" {
			t.Fatalf("projected schema has columns %v, want [name id]", names)
		}
		got, err := ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		var proj [][]any
		for _, row := range want {
			proj = append(proj, []any{row[2], row[0]})
		}
		if d := Diff(got, proj); d != "" {
			t.Fatal(d)
		}
		if h.Statements != nil {
			stmts := h.Statements()
			if len(stmts) == 0 {
				t.Fatal("no statements recorded for the read")
			}
			for _, s := range stmts {
				for _, c := range []string{"amount", "flag", "grp"} {
					if regexp.MustCompile(`\b` + c + `\b`).MatchString(s) {
						t.Errorf("projection not pushed down: statement selects %q: %s", c, s)
					}
				}
			}
		}
		if _, err := src.Read(ctx, sp, []string{"id", "no_such_column"}); err == nil {
			t.Error("Read with an unknown column: no error")
		}
	})

	t.Run("empty", func(t *testing.T) {
		empty := Fixture(0, 0, "src")
		defer empty.Release()
		src := h.Load(t, empty, nil)
		sc, err := src.Schema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		checkSchema(t, sc, FixtureSchema)
		for name, o := range map[string]partition.Options{"none": {By: partition.None}, "default": {Slots: 3}} {
			splits, err := src.Splits(ctx, o)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(splits) == 0 {
				t.Fatalf("%s: no splits for an empty table (want at least one, so that the schema reaches the query)", name)
			}
			for _, sp := range splits {
				r, err := src.Read(ctx, sp, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkSchema(t, r.Schema(), FixtureSchema)
				rows, err := ReadAll(r)
				r.Release()
				if err != nil || len(rows) != 0 {
					t.Fatalf("%s: %d rows, err %v; want none", name, len(rows), err)
				}
			}
		}
	})

	t.Run("nulls", func(t *testing.T) {
		allNull := Fixture(0, 0, "src")
		b := array.NewRecordBuilder(memory.DefaultAllocator, FixtureSchema)
		b.Field(0).(*array.Int64Builder).Append(42)
		for i := 1; i < 5; i++ {
			b.Field(i).AppendNull()
		}
		nulls := b.NewRecordBatch()
		b.Release()
		allNull.Release()
		defer nulls.Release()
		src := h.Load(t, nulls, nil)
		got := readSplits(t, src, partition.Options{By: partition.None}, nil)
		if d := Diff(got, [][]any{{int64(42), nil, nil, nil, nil}}); d != "" {
			t.Fatal(d)
		}
	})

	variants := map[string]map[string]string{"default": nil}
	for k, v := range h.Variants {
		variants[k] = v
	}
	for vname, opts := range variants {
		t.Run("splits/"+vname, func(t *testing.T) {
			src := h.Load(t, rec, opts)
			names := make([]string, 0, len(SplitOptions))
			for n := range SplitOptions {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				o := SplitOptions[n]
				t.Run(n, func(t *testing.T) {
					got := readSplits(t, src, o, nil)
					if d := Diff(got, want); d != "" {
						t.Fatal(d)
					}
				})
			}
		})
	}

	t.Run("cancel", func(t *testing.T) {
		big := Fixture(0, 60000, "big")
		defer big.Release()
		src := h.Load(t, big, nil)
		sp := wholeSplit(t, src)
		before := runtime.NumGoroutine()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		r, err := src.Read(cctx, sp, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Next() {
			t.Fatalf("no first batch: %v", r.Err())
		}
		n := r.RecordBatch().NumRows()
		if n >= 60000 {
			t.Logf("the first batch holds all %d rows: cancellation is not mid-read", n)
		}
		cancel()
		start := time.Now()
		for r.Next() {
			if time.Since(start) > 5*time.Second {
				break
			}
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Fatalf("reader still returns batches %v after cancel", el)
		}
		if err := r.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err after cancel = %v, want context.Canceled", err)
		}
		r.Release()
		r.Release() // idempotent enough for a double release? must not panic
		waitGoroutines(t, before)
	})

	if h.Types != nil {
		t.Run("types", func(t *testing.T) {
			src, cols := h.Types(t)
			sc, err := src.Schema(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(sc.Fields()) != len(cols) {
				t.Fatalf("schema has %d fields, want %d: %v", len(sc.Fields()), len(cols), sc)
			}
			for i, c := range cols {
				f := sc.Field(i)
				if f.Name != c.Name || !arrow.TypeEqual(f.Type, c.Arrow) {
					t.Errorf("%s (%s): schema says %s %s, want %s", c.Name, c.SystemType, f.Name, f.Type, c.Arrow)
				}
			}
			r, err := src.Read(ctx, wholeSplit(t, src), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			for i, c := range cols {
				if f := r.Schema().Field(i); !arrow.TypeEqual(f.Type, c.Arrow) {
					t.Errorf("%s (%s): reader schema says %s, want %s", c.Name, c.SystemType, f.Type, c.Arrow)
				}
			}
			got, err := ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range cols {
				if len(got) != len(c.Values) {
					t.Fatalf("%d rows, want %d", len(got), len(c.Values))
				}
				for j, w := range c.Values {
					if key([]any{got[j][i]}) != key([]any{w}) {
						t.Errorf("%s (%s) row %d: got %#v, want %#v", c.Name, c.SystemType, j, got[j][i], w)
					}
				}
			}
		})
	}
}

func checkSchema(t *testing.T, got, want *arrow.Schema) {
	t.Helper()
	if len(got.Fields()) != len(want.Fields()) {
		t.Fatalf("schema %v, want %v", got, want)
	}
	for i, f := range want.Fields() {
		g := got.Field(i)
		if g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) {
			t.Errorf("field %d: %s %s, want %s %s", i, g.Name, g.Type, f.Name, f.Type)
		}
	}
}

func wholeSplit(t *testing.T, src connectors.ArrowSource) partition.Split {
	t.Helper()
	splits, err := src.Splits(context.Background(), partition.Options{By: partition.None})
	if err != nil {
		t.Fatal(err)
	}
	if len(splits) != 1 {
		t.Fatalf("By: None gave %d splits, want 1", len(splits))
	}
	return splits[0]
}

// readSplits reads every split of src (after a JSON round trip, as when a
// split is sent to a remote worker) and returns all rows.
func readSplits(t *testing.T, src connectors.ArrowSource, o partition.Options, cols []string) [][]any {
	t.Helper()
	ctx := context.Background()
	splits, err := src.Splits(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(splits) == 0 {
		t.Fatal("no splits")
	}
	if o.MaxPartitions > 0 && len(splits) > o.MaxPartitions {
		t.Errorf("%d splits, more than MaxPartitions %d", len(splits), o.MaxPartitions)
	}
	ids := map[string]bool{}
	var all [][]any
	for _, sp := range splits {
		if ids[sp.ID] {
			t.Fatalf("duplicate split id %s", sp.ID)
		}
		ids[sp.ID] = true
		b, err := json.Marshal(sp)
		if err != nil {
			t.Fatal(err)
		}
		var wire partition.Split
		if err := json.Unmarshal(b, &wire); err != nil {
			t.Fatal(err)
		}
		r, err := src.Read(ctx, wire, cols)
		if err != nil {
			t.Fatalf("split %s: %v", sp.ID, err)
		}
		rows, err := ReadAll(r)
		r.Release()
		if err != nil {
			t.Fatalf("split %s: %v", sp.ID, err)
		}
		all = append(all, rows...)
	}
	return all
}

func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines after the cancelled read, %d before:\n%s", n, before, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
