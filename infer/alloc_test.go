package infer

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestEvaluatorsReleaseEverything: our evaluators allocate their outputs
// from the configured allocator, and once the caller releases the input
// and the output nothing is left — for every output shape (one value,
// argmax + probabilities, nulls), at batch sizes {1, 2, 3, 16, 1024}.
func TestEvaluatorsReleaseEverything(t *testing.T) {
	for _, path := range []string{
		"testdata/xgboost/reg_squarederror.model.json",
		"testdata/xgboost/multi_softprob.model.json",
		"testdata/lightgbm/multiclass.model.txt",
		"testdata/linear/regression.model.json",
		"testdata/linear/multinomial.model.json",
	} {
		t.Run(path, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			m, err := Open(Config{Path: path, Mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for _, n := range []int{1, 2, 3, 16, 1024} {
				in := inputBatch(mem, m.InputSchema(), n)
				out, err := m.Predict(context.Background(), in)
				in.Release()
				if err != nil {
					t.Fatal(err)
				}
				if int(out.NumRows()) != n || !out.Schema().Equal(m.OutputSchema()) {
					t.Fatalf("%d rows, schema %s", out.NumRows(), out.Schema())
				}
				out.Release()
			}
		})
	}
}

// inputBatch builds n rows for schema (float64 columns, every 5th value
// NULL) from mem.
func inputBatch(mem memory.Allocator, sc *arrow.Schema, n int) arrow.RecordBatch {
	fields := make([]arrow.Field, sc.NumFields())
	cols := make([]arrow.Array, sc.NumFields())
	for i := range fields {
		fields[i] = arrow.Field{Name: sc.Field(i).Name, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
		b := array.NewFloat64Builder(mem)
		for r := range n {
			if (r+i)%5 == 4 {
				b.AppendNull()
			} else {
				b.Append(float64(r*7%13) / 3)
			}
		}
		cols[i] = b.NewArray()
		b.Release()
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}
