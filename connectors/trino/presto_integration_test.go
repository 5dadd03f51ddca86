package trino_test

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/connectors/conformance"
	"github.com/liminal-data/liminal/connectors/trino"
	"github.com/liminal-data/liminal/partition"
)

// TestPrestoIntegration reads from a real PrestoDB 0.296 through the
// header and type-signature translation: a partitioned table read equal to
// the unpartitioned one, and nested and decimal types.
func TestPrestoIntegration(t *testing.T) {
	base := prestoServer.get(t)
	open := func(path string, opts map[string]string, mem memory.Allocator) *trino.Source {
		s, err := trino.Open(context.Background(), connectors.SourceConfig{Name: "p", URI: base + path, Options: opts}, trino.WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("partitioned", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		s := open("/tpch/tiny", map[string]string{"table": "orders", "partition_column": "orderkey"}, mem)
		whole, err := s.Splits(context.Background(), partition.Options{By: partition.None})
		if err != nil {
			t.Fatal(err)
		}
		cols := []string{"orderkey", "orderdate", "totalprice", "orderstatus"}
		want := readSplits(t, s, whole, cols)
		if len(want) != 15000 {
			t.Fatalf("%d rows, want 15000", len(want))
		}
		splits, err := s.Splits(context.Background(), partition.Options{TargetRows: 4000})
		if err != nil {
			t.Fatal(err)
		}
		if len(splits) != 4 {
			t.Fatalf("%d splits, want 4", len(splits))
		}
		if d := conformance.Diff(readSplits(t, s, splits, cols), want); d != "" {
			t.Fatal(d)
		}
		sc, _ := s.Schema(context.Background())
		if got := sc.Field(sc.FieldIndices("orderdate")[0]).Type.String(); got != "date32" {
			t.Errorf("orderdate: %s", got)
		}
	})
	t.Run("types", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		s := open("/tpch/tiny", map[string]string{"query": `SELECT CAST(ROW(1, 'x') AS ROW(a INTEGER, b VARCHAR)) AS r,
			ARRAY[DECIMAL '1.50', NULL] AS arr, MAP(ARRAY['k'], ARRAY[1]) AS m,
			CAST(ROW(ROW(DATE '2024-01-02')) AS ROW(o ROW(d DATE))) AS nested,
			TIMESTAMP '2024-01-01 01:02:03.456' AS ts, CAST(12.5 AS DECIMAL(10,2)) AS dec, BIGINT '9007199254740993' AS big`}, mem)
		sc, err := s.Schema(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"struct<a: int32 nullable, b: utf8 nullable>", "list<item: decimal(3, 2), nullable>",
			"map<utf8, int32, items_nullable>", "struct<o: struct<d: date32 nullable> nullable>", "timestamp[us]", "decimal(10, 2)", "int64"}
		for i, w := range want {
			if got := sc.Field(i).Type.String(); got != w {
				t.Errorf("column %s: %s, want %s", sc.Field(i).Name, got, w)
			}
		}
		sp, _ := s.Splits(context.Background(), partition.Options{})
		r, err := s.Read(context.Background(), sp[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		if !r.Next() {
			t.Fatalf("no rows: %v", r.Err())
		}
		rec := r.RecordBatch()
		vals := []string{`{"a":1,"b":"x"}`, `[{"key":"k","value":1}]`, `{"o":{"d":"2024-01-02"}}`, "2024-01-01T01:02:03.456", "12.5", "9007199254740993"}
		for i, c := range []int{0, 2, 3, 4, 5, 6} {
			if got := rec.Column(c).ValueStr(0); got != vals[i] {
				t.Errorf("column %s = %s, want %s", sc.Field(c).Name, got, vals[i])
			}
		}
	})
}
