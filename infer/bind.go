package infer

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// ErrBinding marks a model whose inputs cannot be fed from the columns at
// hand: a feature without a column, or a column of an incompatible type.
var ErrBinding = errors.New("feature binding")

// Binding maps a model's inputs to the columns of one input schema.
type Binding struct {
	cols   []int
	schema *arrow.Schema
}

// Bind maps each input of m to the column of schema with the same name
// (models loaded with Config.Features carry the user's column names). Every
// problem is reported at once: missing columns (with the columns that do
// exist) and incompatible types.
func Bind(m Model, schema *arrow.Schema) (*Binding, error) {
	want := m.InputSchema()
	b := &Binding{cols: make([]int, want.NumFields())}
	fields := make([]arrow.Field, want.NumFields())
	var problems []string
	missing := false
	for i, f := range want.Fields() {
		idx := schema.FieldIndices(f.Name)
		if len(idx) == 0 {
			missing = true
			problems = append(problems, fmt.Sprintf("model input %q not found in columns [%s]", f.Name, columnList(schema)))
			continue
		}
		col := schema.Field(idx[0])
		if !Convertible(col.Type, f.Type) {
			problems = append(problems, fmt.Sprintf("model input %q wants %s, column %q is %s", f.Name, f.Type, col.Name, col.Type))
			continue
		}
		b.cols[i] = idx[0]
		fields[i] = arrow.Field{Name: f.Name, Type: col.Type, Nullable: true}
	}
	if len(problems) > 0 {
		hint := ""
		if missing {
			hint = " (name the columns feeding the model's inputs, in model order, with features)"
		}
		return nil, fmt.Errorf("%w: %s%s", ErrBinding, strings.Join(problems, "; "), hint)
	}
	b.schema = arrow.NewSchema(fields, nil)
	return b, nil
}

func columnList(s *arrow.Schema) string {
	const max = 20
	names := make([]string, 0, min(s.NumFields(), max+1))
	for i, f := range s.Fields() {
		if i == max {
			names = append(names, fmt.Sprintf("... %d more", s.NumFields()-max))
			break
		}
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}

// Inputs selects the model's input columns of rec in model order, zero
// copy; the caller releases the result.
func (b *Binding) Inputs(rec arrow.RecordBatch) arrow.RecordBatch {
	cols := make([]arrow.Array, len(b.cols))
	for i, c := range b.cols {
		cols[i] = rec.Column(c)
	}
	return array.NewRecordBatch(b.schema, cols, rec.NumRows())
}

// Convertible reports whether a column of type from can feed a model input
// of type to: numeric inputs take integers, floats, booleans and decimals;
// string inputs take strings; a Null-typed input takes anything.
func Convertible(from, to arrow.DataType) bool {
	if to.ID() == arrow.NULL || arrow.TypeEqual(from, to) {
		return true
	}
	switch {
	case isNumeric(to):
		return isNumeric(from) || from.ID() == arrow.BOOL || from.ID() == arrow.DECIMAL128
	case to.ID() == arrow.STRING || to.ID() == arrow.LARGE_STRING:
		return from.ID() == arrow.STRING || from.ID() == arrow.LARGE_STRING
	}
	return false
}

func isNumeric(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
		return true
	}
	return false
}

// Float32Rows writes rows [start, start+n) of the columns of rec as a
// row-major float32 matrix into dst (n*NumCols values): nulls become NaN,
// booleans 0/1. Columns must be Convertible to a numeric type.
func Float32Rows(rec arrow.RecordBatch, start, n int, dst []float32) error {
	nf := int(rec.NumCols())
	for c := 0; c < nf; c++ {
		if err := fillColumn(rec.Column(c), start, n, dst[c:], nf, func(v float64) float32 { return float32(v) }); err != nil {
			return fmt.Errorf("column %q: %w", rec.ColumnName(c), err)
		}
	}
	return nil
}

// Float64Rows is Float32Rows into a float64 matrix.
func Float64Rows(rec arrow.RecordBatch, start, n int, dst []float64) error {
	nf := int(rec.NumCols())
	for c := 0; c < nf; c++ {
		if err := fillColumn(rec.Column(c), start, n, dst[c:], nf, func(v float64) float64 { return v }); err != nil {
			return fmt.Errorf("column %q: %w", rec.ColumnName(c), err)
		}
	}
	return nil
}

// fillColumn writes n values of col from row start into dst[0], dst[stride],
// ...; the type switch runs once per column, the loops are typed.
func fillColumn[F float32 | float64](col arrow.Array, start, n int, dst []F, stride int, conv func(float64) F) error {
	switch a := col.(type) {
	case *array.Float32:
		fillTyped(a.Float32Values()[start:start+n], dst, stride)
	case *array.Float64:
		fillTyped(a.Float64Values()[start:start+n], dst, stride)
	case *array.Int8:
		fillTyped(a.Int8Values()[start:start+n], dst, stride)
	case *array.Int16:
		fillTyped(a.Int16Values()[start:start+n], dst, stride)
	case *array.Int32:
		fillTyped(a.Int32Values()[start:start+n], dst, stride)
	case *array.Int64:
		fillTyped(a.Int64Values()[start:start+n], dst, stride)
	case *array.Uint8:
		fillTyped(a.Uint8Values()[start:start+n], dst, stride)
	case *array.Uint16:
		fillTyped(a.Uint16Values()[start:start+n], dst, stride)
	case *array.Uint32:
		fillTyped(a.Uint32Values()[start:start+n], dst, stride)
	case *array.Uint64:
		fillTyped(a.Uint64Values()[start:start+n], dst, stride)
	case *array.Float16:
		for i := 0; i < n; i++ {
			dst[i*stride] = F(a.Value(start + i).Float32())
		}
	case *array.Boolean:
		for i := 0; i < n; i++ {
			if a.Value(start + i) {
				dst[i*stride] = 1
			} else {
				dst[i*stride] = 0
			}
		}
	case *array.Decimal128:
		scale := a.DataType().(*arrow.Decimal128Type).Scale
		vals := a.Values()[start : start+n]
		for i, v := range vals {
			dst[i*stride] = conv(decimal128.Num(v).ToFloat64(scale))
		}
	default:
		return fmt.Errorf("%w: type %s is not numeric", ErrBinding, col.DataType())
	}
	if col.NullN() > 0 {
		nan := F(math.NaN())
		for i := 0; i < n; i++ {
			if col.IsNull(start + i) {
				dst[i*stride] = nan
			}
		}
	}
	return nil
}

func fillTyped[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 | float32 | float64, F float32 | float64](src []T, dst []F, stride int) {
	for i, v := range src {
		dst[i*stride] = F(v)
	}
}
