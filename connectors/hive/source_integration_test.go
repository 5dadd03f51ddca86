package hive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/connectors/conformance"
	"github.com/liminal-data/liminal/partition"
)

// loadTable writes rec as JSON lines and creates a table over them with
// the fixture's schema (Spark reads JSON numbers back exactly).
func loadTable(t *testing.T, rec arrow.RecordBatch) string {
	t.Helper()
	ServerForTest(t)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, row := range conformance.Rows(rec) {
		m := map[string]any{}
		for i, c := range conformance.FixtureColumns {
			m[c] = row[i]
		}
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "part-0.json"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	name := TableName("conf")
	Exec(t, fmt.Sprintf("CREATE TABLE %s (id BIGINT, grp INT, name STRING, amount DOUBLE, flag BOOLEAN) USING json LOCATION %s", name, quoteString(dir)))
	t.Cleanup(func() { Exec(t, "DROP TABLE IF EXISTS "+name) })
	return name
}

func openTest(t *testing.T, query string, opts map[string]string, mem memory.Allocator) *Source {
	t.Helper()
	src, err := NewSource(context.Background(), connectors.SourceConfig{Name: "t", URI: URI(t, query), Options: opts}, mem)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestConformanceIntegration(t *testing.T) {
	ServerForTest(t)
	var mu sync.Mutex
	var stmts []string
	testHookStatement = func(s string) {
		mu.Lock()
		stmts = append(stmts, s)
		mu.Unlock()
	}
	defer func() { testHookStatement = nil }()
	conformance.RunSource(t, conformance.SourceHarness{
		Load: func(t *testing.T, rec arrow.RecordBatch, opts map[string]string) connectors.ArrowSource {
			return openTest(t, "table="+loadTable(t, rec), opts, memory.DefaultAllocator)
		},
		Variants: map[string]map[string]string{
			"partition_column=id":  {"partition_column": "id"},
			"partition_column=grp": {"partition_column": "grp"}, // NULLs in the first range
			"fetch_size=64":        {"fetch_size": "64"},
		},
		Statements: func() []string {
			mu.Lock()
			defer mu.Unlock()
			var out []string
			for _, s := range stmts {
				if strings.HasPrefix(s, "SELECT `") { // projected reads
					out = append(out, s)
				}
			}
			stmts = nil
			return out
		},
		Types: typesTable,
	})
}

// typesTable creates a table with one column per Hive type and three rows
// (the last all NULL) and says what each column reads as.
func typesTable(t *testing.T) (connectors.ArrowSource, []conformance.TypeColumn) {
	name := TableName("types")
	cols := []conformance.TypeColumn{
		{Name: "c_tinyint", SystemType: "TINYINT", Arrow: arrow.PrimitiveTypes.Int8, Values: []any{int64(-128), int64(127), nil}},
		{Name: "c_smallint", SystemType: "SMALLINT", Arrow: arrow.PrimitiveTypes.Int16, Values: []any{int64(-32768), int64(7), nil}},
		{Name: "c_int", SystemType: "INT", Arrow: arrow.PrimitiveTypes.Int32, Values: []any{int64(-2147483648), int64(42), nil}},
		{Name: "c_bigint", SystemType: "BIGINT", Arrow: arrow.PrimitiveTypes.Int64, Values: []any{int64(-9223372036854775808), int64(9223372036854775807), nil}},
		{Name: "c_float", SystemType: "FLOAT", Arrow: arrow.PrimitiveTypes.Float32, Values: []any{1.5, -0.25, nil}},
		{Name: "c_double", SystemType: "DOUBLE", Arrow: arrow.PrimitiveTypes.Float64, Values: []any{3.141592653589793, -1e300, nil}},
		{Name: "c_dec", SystemType: "DECIMAL(10,2)", Arrow: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Values: []any{"12345678.90", "-0.01", nil}},
		{Name: "c_dec38", SystemType: "DECIMAL(38,10)", Arrow: &arrow.Decimal128Type{Precision: 38, Scale: 10}, Values: []any{"1234567890123456789012345678.0123456789", "0.0000000001", nil}},
		{Name: "c_bool", SystemType: "BOOLEAN", Arrow: arrow.FixedWidthTypes.Boolean, Values: []any{true, false, nil}},
		{Name: "c_string", SystemType: "STRING", Arrow: arrow.BinaryTypes.String, Values: []any{`héllo, "world" ' \ 😀`, "", nil}},
		{Name: "c_varchar", SystemType: "VARCHAR(10)", Arrow: arrow.BinaryTypes.String, Values: []any{"abc", "0123456789", nil}},
		{Name: "c_char", SystemType: "CHAR(5)", Arrow: arrow.BinaryTypes.String, Values: []any{"ab   ", "abcde", nil}},
		{Name: "c_binary", SystemType: "BINARY", Arrow: arrow.BinaryTypes.Binary, Values: []any{[]byte{0xde, 0xad, 0xbe, 0xef}, []byte{}, nil}},
		{Name: "c_date", SystemType: "DATE", Arrow: arrow.FixedWidthTypes.Date32, Values: []any{"2024-02-29", "1969-12-31", nil}},
		{Name: "c_ts", SystemType: "TIMESTAMP", Arrow: &arrow.TimestampType{Unit: arrow.Microsecond}, Values: []any{"2024-02-29 12:34:56.123456", "1969-12-31 23:59:59", nil}},
		{Name: "c_arr", SystemType: "ARRAY<INT>", Arrow: arrow.ListOf(arrow.PrimitiveTypes.Int32), Values: []any{[]any{int64(1), nil, int64(3)}, []any{}, nil}},
		{Name: "c_arr_str", SystemType: "ARRAY<STRING>", Arrow: arrow.ListOf(arrow.BinaryTypes.String), Values: []any{[]any{"a,b", "c]d", nil}, []any{""}, nil}},
	}
	var defs []string
	for _, c := range cols {
		defs = append(defs, c.Name+" "+c.SystemType)
	}
	Exec(t, "CREATE TABLE "+name+" ("+strings.Join(defs, ", ")+") USING parquet",
		`INSERT INTO `+name+` VALUES
		 (-128Y, -32768S, -2147483648, -9223372036854775808L, CAST(1.5 AS FLOAT), 3.141592653589793D, 12345678.90BD,
		  1234567890123456789012345678.0123456789BD, true, 'héllo, "world" \' \\ 😀', 'abc', 'ab', X'DEADBEEF',
		  DATE '2024-02-29', TIMESTAMP '2024-02-29 12:34:56.123456', array(1, NULL, 3), array('a,b', 'c]d', NULL)),
		 (127Y, 7S, 42, 9223372036854775807L, CAST(-0.25 AS FLOAT), -1e300D, -0.01BD, 0.0000000001BD, false, '', '0123456789',
		  'abcde', X'', DATE '1969-12-31', TIMESTAMP '1969-12-31 23:59:59', array(), array('')),
		 (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`)
	t.Cleanup(func() { Exec(t, "DROP TABLE IF EXISTS "+name) })
	// A query keeps the row order the VALUES gave.
	return openTest(t, "table="+name, nil, memory.DefaultAllocator), cols
}

// TestComplexTypesIntegration reads map and struct columns (and nesting)
// into Arrow maps and structs, from a table and from a query.
func TestComplexTypesIntegration(t *testing.T) {
	name := TableName("complex")
	Exec(t, "CREATE TABLE "+name+` (id INT, m MAP<STRING,INT>, mi MAP<INT,STRING>, s STRUCT<a:INT,b:STRING,c:ARRAY<DOUBLE>>,
		 nested ARRAY<STRUCT<x:DATE,y:MAP<STRING,ARRAY<BIGINT>>>>) USING parquet`,
		"INSERT INTO "+name+` VALUES
		 (1, map('k1', 1, 'k:2', NULL), map(1, 'one', 2, 'two, "2"'), named_struct('a', 5, 'b', 'x}y', 'c', array(1.5D, -2D)),
		  array(named_struct('x', DATE '2024-01-02', 'y', map('p', array(1L, 2L))), NULL)),
		 (2, map(), NULL, named_struct('a', NULL, 'b', NULL, 'c', NULL), array()),
		 (3, NULL, NULL, NULL, NULL)`)
	want := map[int64][]string{
		1: {`[{"key":"k1","value":1},{"key":"k:2","value":null}]`, `[{"key":1,"value":"one"},{"key":2,"value":"two, \"2\""}]`,
			`{"a":5,"b":"x}y","c":[1.5,-2]}`, `[{"x":"2024-01-02","y":[{"key":"p","value":[1,2]}]},null]`},
		2: {`[]`, `(null)`, `{"a":null,"b":null,"c":null}`, `[]`},
		3: {`(null)`, `(null)`, `(null)`, `(null)`},
	}
	for _, q := range []string{"table=" + name, "query=SELECT * FROM " + name} {
		t.Run(strings.SplitN(q, "=", 2)[0], func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			src := openTest(t, q, nil, mem)
			sc, err := src.Schema(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			wantTypes := []string{"int32", "map<utf8, int32, items_nullable>", "map<int32, utf8, items_nullable>",
				"struct<a: int32 nullable, b: utf8 nullable, c: list<item: float64, nullable> nullable>",
				"list<item: struct<x: date32 nullable, y: map<utf8, list<item: int64, nullable>, items_nullable> nullable>, nullable>"}
			for i, w := range wantTypes {
				if got := sc.Field(i).Type.String(); got != w {
					t.Errorf("column %s: type %s, want %s", sc.Field(i).Name, got, w)
				}
			}
			r, err := src.Read(context.Background(), partition.Split{ID: "all"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			n := 0
			for r.Next() {
				b := r.RecordBatch()
				for i := range int(b.NumRows()) {
					id := int64(b.Column(0).(*array.Int32).Value(i))
					for c := 1; c < 5; c++ {
						if got := b.Column(c).ValueStr(i); got != want[id][c-1] {
							t.Errorf("row %d column %s: %s, want %s", id, sc.Field(c).Name, got, want[id][c-1])
						}
					}
					n++
				}
			}
			if r.Err() != nil || n != 3 {
				t.Fatalf("%d rows, err %v", n, r.Err())
			}
		})
	}
}

// eventsTable creates a table partitioned by dt and region (with a NULL
// region and one that needs escaping in its directory name) and an
// unpartitioned copy.
var eventsOnce struct {
	sync.Once
	name string
}

// EventsTable is eventsTable for the external test package.
func EventsTable(t *testing.T) string { return eventsTable(t) }

func eventsTable(t *testing.T) string {
	ServerForTest(t)
	eventsOnce.Do(func() {
		name := TableName("events")
		Exec(t, "CREATE TABLE "+name+` (id BIGINT, v DOUBLE, s STRING, dt DATE, region STRING) USING parquet PARTITIONED BY (dt, region)`,
			"INSERT INTO "+name+` SELECT id, id * 0.5, CASE WHEN id % 11 = 0 THEN NULL ELSE concat('s', id) END,
			 date_add(DATE '2024-01-01', CAST(id % 3 AS INT)),
			 CASE id % 5 WHEN 0 THEN 'EU' WHEN 1 THEN 'US' WHEN 2 THEN 'a/b c=d%' WHEN 3 THEN 'IL' ELSE NULL END
			 FROM range(0, 2500)`,
			"CREATE TABLE "+name+"_flat USING parquet AS SELECT * FROM "+name)
		eventsOnce.name = name
	})
	if eventsOnce.name == "" {
		t.Fatal("events table was not created")
	}
	return eventsOnce.name
}

func readAll(t *testing.T, src *Source, o partition.Options, cols []string) ([][]any, []partition.Split) {
	t.Helper()
	splits, err := src.Splits(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for _, sp := range splits {
		r, err := src.Read(context.Background(), sp, cols)
		if err != nil {
			t.Fatalf("split %s (%s): %v", sp.ID, sp.Locator, err)
		}
		got, err := conformance.ReadAll(r)
		r.Release()
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, got...)
	}
	return rows, splits
}

func TestPartitionedTableIntegration(t *testing.T) {
	name := eventsTable(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	flat := openTest(t, "table="+name+"_flat", nil, mem)
	want, _ := readAll(t, flat, partition.Options{By: partition.None}, nil)
	if len(want) != 2500 {
		t.Fatalf("%d rows in the flat copy", len(want))
	}
	src := openTest(t, "table="+name, map[string]string{"fetch_size": "100"}, mem)
	sc, _ := src.Schema(context.Background())
	if got := fmt.Sprint(sc.Field(3).Type, " ", sc.Field(4).Type); got != "date32 utf8" {
		t.Fatalf("partition column types %s", got)
	}
	tests := map[string]struct {
		o      partition.Options
		splits int
	}{
		"one split per partition": {partition.Options{}, 15},
		"grouped":                 {partition.Options{MaxPartitions: 4}, 4},
		"none":                    {partition.Options{By: partition.None}, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, splits := readAll(t, src, tc.o, nil)
			if len(splits) != tc.splits {
				t.Errorf("%d splits, want %d", len(splits), tc.splits)
			}
			if d := conformance.Diff(got, want); d != "" {
				t.Fatal(d)
			}
			for _, sp := range splits {
				if tc.splits == 15 && !strings.Contains(sp.Attrs[attrWhere], "`dt` = DATE '2024-01-0") {
					t.Errorf("split %s: predicate %q", sp.ID, sp.Attrs[attrWhere])
				}
			}
		})
	}
	// Projection with a partition column.
	got, _ := readAll(t, src, partition.Options{}, []string{"region", "id"})
	var proj [][]any
	for _, r := range want {
		proj = append(proj, []any{r[4], r[0]})
	}
	if d := conformance.Diff(got, proj); d != "" {
		t.Fatal(d)
	}
	// The escaped and the NULL partition are there.
	seen := map[any]int{}
	for _, r := range got {
		seen[r[0]]++
	}
	if seen["a/b c=d%"] != 500 || seen[nil] != 500 {
		t.Fatalf("regions %v", seen)
	}
}

func TestEmptyAndErrorsIntegration(t *testing.T) {
	name := TableName("empty")
	Exec(t, "CREATE TABLE "+name+" (id BIGINT, s STRING) USING parquet PARTITIONED BY (s)")
	src := openTest(t, "table="+name, map[string]string{"partition_column": "id"}, memory.DefaultAllocator)
	got, splits := readAll(t, src, partition.Options{Slots: 4}, nil)
	if len(got) != 0 || len(splits) != 1 {
		t.Fatalf("empty table: %d rows in %d splits", len(got), len(splits))
	}
	src = openTest(t, "table="+name, nil, memory.DefaultAllocator)
	if got, splits = readAll(t, src, partition.Options{}, nil); len(got) != 0 || len(splits) != 1 {
		t.Fatalf("empty partitioned table: %d rows in %d splits", len(got), len(splits))
	}

	ctx := context.Background()
	tests := map[string]struct {
		query string
		want  string
	}{
		"missing table": {"table=no_such_table", "no_such_table"},
		"bad syntax":    {"query=" + "SELEC 1", "PARSE_SYNTAX_ERROR"},
		"bad column":    {"query=SELECT nope FROM " + name, "nope"},
	}
	for n, tc := range tests {
		t.Run(n, func(t *testing.T) {
			_, err := OpenSource(ctx, connectors.SourceConfig{Name: "bad", URI: URI(t, strings.ReplaceAll(tc.query, " ", "%20"))})
			if err == nil || !errors.Is(err, connectors.ErrPermanent) || errors.Is(err, connectors.ErrTransient) {
				t.Fatalf("err %v: want a permanent error", err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err %q: want the server's message (one line) naming %q", err, tc.want)
			}
		})
	}
	// An error at read time (division by zero under ANSI) is permanent too.
	bad := openTest(t, "query=SELECT id, 1 / (id - id) AS x FROM range(0, 3)", map[string]string{}, memory.DefaultAllocator)
	r, err := bad.Read(ctx, partition.Split{ID: "all"}, nil)
	if err == nil {
		for r.Next() {
		}
		err = r.Err()
		r.Release()
	}
	if err == nil || !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("division by zero: %v", err)
	}
	t.Log(err)
}

func TestKeyRangesIntegration(t *testing.T) {
	name := eventsTable(t)
	src := openTest(t, "query=SELECT id, s FROM "+name+" WHERE id < 1000 UNION ALL SELECT NULL, 'null id'", map[string]string{"partition_column": "id"}, memory.DefaultAllocator)
	want, _ := readAll(t, src, partition.Options{By: partition.None}, nil)
	got, splits := readAll(t, src, partition.Options{TargetRows: 150}, nil)
	if len(splits) != 7 {
		t.Errorf("%d splits, want 7", len(splits))
	}
	if d := conformance.Diff(got, want); d != "" {
		t.Fatal(d)
	}
	if !strings.Contains(splits[0].Attrs[attrWhere], "IS NULL") {
		t.Fatalf("first split %q does not take the NULLs", splits[0].Attrs[attrWhere])
	}
	ids := make([]int, 0, len(got))
	for _, r := range got {
		if r[0] != nil {
			ids = append(ids, int(r[0].(int64)))
		}
	}
	sort.Ints(ids)
	if len(ids) != 1000 || ids[0] != 0 || ids[999] != 999 {
		t.Fatalf("ids %d..%d (%d)", ids[0], ids[len(ids)-1], len(ids))
	}
}
