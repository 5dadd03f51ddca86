package serve

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// datatype is the Open Inference Protocol name of an Arrow type.
func datatype(t arrow.DataType) string {
	switch t.ID() {
	case arrow.BOOL:
		return "BOOL"
	case arrow.INT8:
		return "INT8"
	case arrow.INT16:
		return "INT16"
	case arrow.INT32:
		return "INT32"
	case arrow.INT64:
		return "INT64"
	case arrow.UINT8:
		return "UINT8"
	case arrow.UINT16:
		return "UINT16"
	case arrow.UINT32:
		return "UINT32"
	case arrow.UINT64:
		return "UINT64"
	case arrow.FLOAT16:
		return "FP16"
	case arrow.FLOAT32:
		return "FP32"
	case arrow.FLOAT64, arrow.NULL, arrow.DECIMAL128:
		return "FP64"
	}
	return "BYTES"
}

// appendValue writes row i of a as JSON: null for nulls and for NaN or
// infinite floats (JSON has no such numbers).
func appendValue(b []byte, a arrow.Array, i int) []byte {
	if a.IsNull(i) {
		return append(b, "null"...)
	}
	switch a := a.(type) {
	case *array.Float64:
		return appendFloat(b, a.Value(i), 64)
	case *array.Float32:
		return appendFloat(b, float64(a.Value(i)), 32)
	case *array.Int64:
		return strconv.AppendInt(b, a.Value(i), 10)
	case *array.Int32:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int16:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int8:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Uint64:
		return strconv.AppendUint(b, a.Value(i), 10)
	case *array.Uint32:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Uint16:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Uint8:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Float16:
		return appendFloat(b, float64(a.Value(i).Float32()), 32)
	case *array.Boolean:
		return strconv.AppendBool(b, a.Value(i))
	case *array.String:
		return appendString(b, a.Value(i))
	case *array.LargeString:
		return appendString(b, a.Value(i))
	}
	return appendString(b, a.ValueStr(i))
}

func appendFloat(b []byte, v float64, bits int) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, bits)
}

// appendString writes s as a JSON string; plain ASCII without characters
// that need escaping is copied as is.
func appendString(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// appendV2Response writes an inference response: one output per column of
// out (or of the requested outputs, by index), shape [N].
func appendV2Response(b []byte, modelName, id string, out arrow.RecordBatch, which []int) []byte {
	n := int(out.NumRows())
	b = append(b, `{"model_name":`...)
	b = appendString(b, modelName)
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, id)
	}
	b = append(b, `,"outputs":[`...)
	for k, c := range which {
		if k > 0 {
			b = append(b, ',')
		}
		col := out.Column(c)
		b = append(b, `{"name":`...)
		b = appendString(b, out.ColumnName(c))
		b = append(b, `,"datatype":"`...)
		b = append(b, datatype(col.DataType())...)
		b = append(b, `","shape":[`...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, `],"data":[`...)
		for i := 0; i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, col, i)
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}\n"...)
}

// appendV1Response writes {"predictions": [...]}: a value per row for a
// single-column output, else an object per row with every column.
func appendV1Response(b []byte, out arrow.RecordBatch) []byte {
	n := int(out.NumRows())
	nc := int(out.NumCols())
	b = append(b, `{"predictions":[`...)
	var names [][]byte
	if nc > 1 {
		names = make([][]byte, nc)
		for c := range names {
			names[c] = append(appendString(nil, out.ColumnName(c)), ':')
		}
	}
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		if nc == 1 {
			b = appendValue(b, out.Column(0), i)
			continue
		}
		b = append(b, '{')
		for c := 0; c < nc; c++ {
			if c > 0 {
				b = append(b, ',')
			}
			b = append(b, names[c]...)
			b = appendValue(b, out.Column(c), i)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}
