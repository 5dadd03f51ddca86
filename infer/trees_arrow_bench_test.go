package infer

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// BenchmarkTreeModelArrow is the whole Arrow path of a tree model:
// float64 columns transposed into blocks of float32 rows, scored, and
// wrapped as an Arrow column. Compare with BenchmarkXGB (the evaluator on
// a ready matrix) to see what the Arrow adapter costs.
func BenchmarkTreeModelArrow(b *testing.B) {
	for _, c := range []struct{ trees, depth, nf int }{{60, 4, 6}, {500, 8, 50}} {
		b.Run(fmt.Sprintf("trees=%d,depth=%d,features=%d", c.trees, c.depth, c.nf), func(b *testing.B) {
			t, err := ParseXGBoost(xgbSyntheticModel(1, c.trees, c.depth, c.nf))
			if err != nil {
				b.Fatal(err)
			}
			m, err := NewTreeModel(t, nil)
			if err != nil {
				b.Fatal(err)
			}
			const rows = 65536
			x := xgbSyntheticRows(2, rows, c.nf)
			cols := make([]arrow.Array, c.nf)
			for j := range cols {
				bld := array.NewFloat64Builder(memory.DefaultAllocator)
				for i := 0; i < rows; i++ {
					bld.Append(float64(x[i*c.nf+j]))
				}
				cols[j] = bld.NewArray()
			}
			fields := make([]arrow.Field, c.nf)
			for j, f := range m.InputSchema().Fields() {
				fields[j] = arrow.Field{Name: f.Name, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
			}
			rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rows)
			b.ReportAllocs()
			for b.Loop() {
				out, err := m.Predict(context.Background(), rec)
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
