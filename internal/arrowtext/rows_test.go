package arrowtext

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/internal/depcheck"
)

func TestRows(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sc := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}, {Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(mem, sc)
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"a", ""}, []bool{true, false})
	b.Field(1).(*array.Int64Builder).AppendValues([]int64{7, 8}, nil)
	rec := b.NewRecordBatch()
	b.Release()
	rr, _ := array.NewRecordReader(sc, []arrow.RecordBatch{rec})
	rec.Release()
	rows, err := Rows(rr)
	rr.Release()
	if err != nil || len(rows) != 2 || *rows[0][0] != "a" || *rows[0][1] != "7" || rows[1][0] != nil || *rows[1][1] != "8" {
		t.Fatalf("%v %v", rows, err)
	}
}

func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "engine", "connectors", "coordinator", "infer", "spec", "partition", "cmd", "api", "checks")
}
