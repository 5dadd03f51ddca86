package conformance

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Value returns row i of a in a canonical Go form that tests compare with
// reflect-free equality (see Same):
//
//	NULL                        nil
//	signed integers             int64
//	unsigned integers           uint64
//	float16/32/64               float64
//	bool                        bool
//	string, large string        string
//	binary, fixed-size binary   []byte
//	decimal128(p,s)             string, e.g. "-12.50" (s digits after the point)
//	date32, date64              string "2006-01-02"
//	timestamp                   string "2006-01-02 15:04:05.999999" (naive)
//	                            or the same with "Z" appended when the type
//	                            has a time zone (the instant in UTC)
//	time64                      string "15:04:05.999999"
//	list, large list            []any of the element values
//
// Other types fall back to the array's own ValueStr.
func Value(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch c := a.(type) {
	case *array.Int8:
		return int64(c.Value(i))
	case *array.Int16:
		return int64(c.Value(i))
	case *array.Int32:
		return int64(c.Value(i))
	case *array.Int64:
		return c.Value(i)
	case *array.Uint8:
		return uint64(c.Value(i))
	case *array.Uint16:
		return uint64(c.Value(i))
	case *array.Uint32:
		return uint64(c.Value(i))
	case *array.Uint64:
		return c.Value(i)
	case *array.Float16:
		return float64(c.Value(i).Float32())
	case *array.Float32:
		return float64(c.Value(i))
	case *array.Float64:
		return c.Value(i)
	case *array.Boolean:
		return c.Value(i)
	case *array.String:
		return c.Value(i)
	case *array.LargeString:
		return c.Value(i)
	case *array.Binary:
		return append([]byte{}, c.Value(i)...)
	case *array.LargeBinary:
		return append([]byte{}, c.Value(i)...)
	case *array.FixedSizeBinary:
		return append([]byte{}, c.Value(i)...)
	case *array.Decimal128:
		dt := c.DataType().(*arrow.Decimal128Type)
		return c.Value(i).ToString(dt.Scale)
	case *array.Date32:
		return c.Value(i).ToTime().Format("2006-01-02")
	case *array.Date64:
		return c.Value(i).ToTime().Format("2006-01-02")
	case *array.Timestamp:
		dt := c.DataType().(*arrow.TimestampType)
		ts := c.Value(i).ToTime(dt.Unit).UTC()
		s := ts.Format("2006-01-02 15:04:05.999999")
		if dt.TimeZone != "" {
			s += "Z"
		}
		return s
	case *array.Time64:
		dt := c.DataType().(*arrow.Time64Type)
		return c.Value(i).ToTime(dt.Unit).Format("15:04:05.999999")
	case array.ListLike:
		lo, hi := c.ValueOffsets(i)
		vals := c.ListValues()
		out := make([]any, 0, hi-lo)
		for j := lo; j < hi; j++ {
			out = append(out, Value(vals, int(j)))
		}
		return out
	}
	return a.ValueStr(i)
}

// Rows returns the rows of rec in canonical form (see Value).
func Rows(rec arrow.RecordBatch) [][]any {
	out := make([][]any, rec.NumRows())
	for r := range out {
		row := make([]any, rec.NumCols())
		for c := range row {
			row[c] = Value(rec.Column(c), r)
		}
		out[r] = row
	}
	return out
}

// ReadAll drains r and returns its rows in canonical form. It does not
// release r.
func ReadAll(r array.RecordReader) ([][]any, error) {
	var out [][]any
	for r.Next() {
		out = append(out, Rows(r.RecordBatch())...)
	}
	return out, r.Err()
}

// key renders a row so that rows compare equal exactly when their
// canonical values do; floats are rounded to 12 significant digits so that
// a value that went through decimal text compares equal.
func key(row []any) string {
	var b strings.Builder
	for i, v := range row {
		if i > 0 {
			b.WriteString("|")
		}
		writeKey(&b, v)
	}
	return b.String()
}

func writeKey(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("NULL")
	case float64:
		if math.IsNaN(x) {
			b.WriteString("f:NaN")
		} else {
			fmt.Fprintf(b, "f:%.12g", x)
		}
	case []byte:
		fmt.Fprintf(b, "b:%x", x)
	case string:
		fmt.Fprintf(b, "s:%q", x)
	case []any:
		b.WriteString("[")
		for i, e := range x {
			if i > 0 {
				b.WriteString(",")
			}
			writeKey(b, e)
		}
		b.WriteString("]")
	case time.Time:
		b.WriteString("t:" + x.UTC().Format(time.RFC3339Nano))
	default:
		fmt.Fprintf(b, "%T:%v", v, v)
	}
}

// Diff compares two row multisets and describes the first difference, or
// returns "" when they are equal.
func Diff(got, want [][]any) string {
	count := map[string]int{}
	for _, r := range want {
		count[key(r)]++
	}
	for _, r := range got {
		count[key(r)]--
	}
	var extra, missing []string
	for k, n := range count {
		for ; n > 0; n-- {
			missing = append(missing, k)
		}
		for ; n < 0; n++ {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 && len(missing) == 0 {
		return ""
	}
	sort.Strings(extra)
	sort.Strings(missing)
	trim := func(s []string) []string {
		if len(s) > 5 {
			return append(s[:5:5], fmt.Sprintf("... (%d more)", len(s)-5))
		}
		return s
	}
	return fmt.Sprintf("got %d rows, want %d; unexpected %v; missing %v", len(got), len(want), trim(extra), trim(missing))
}
