package hive

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/beltran/gohive/hiveserver"
)

// column is one fetched result column: its values in whichever Thrift
// representation the server chose, and its null bitmap.
type column struct {
	c *hiveserver.TColumn
}

func (c column) len() int {
	switch {
	case c.c.BoolVal != nil:
		return len(c.c.BoolVal.Values)
	case c.c.ByteVal != nil:
		return len(c.c.ByteVal.Values)
	case c.c.I16Val != nil:
		return len(c.c.I16Val.Values)
	case c.c.I32Val != nil:
		return len(c.c.I32Val.Values)
	case c.c.I64Val != nil:
		return len(c.c.I64Val.Values)
	case c.c.DoubleVal != nil:
		return len(c.c.DoubleVal.Values)
	case c.c.StringVal != nil:
		return len(c.c.StringVal.Values)
	case c.c.BinaryVal != nil:
		return len(c.c.BinaryVal.Values)
	}
	return 0
}

func (c column) nulls() []byte {
	switch {
	case c.c.BoolVal != nil:
		return c.c.BoolVal.Nulls
	case c.c.ByteVal != nil:
		return c.c.ByteVal.Nulls
	case c.c.I16Val != nil:
		return c.c.I16Val.Nulls
	case c.c.I32Val != nil:
		return c.c.I32Val.Nulls
	case c.c.I64Val != nil:
		return c.c.I64Val.Nulls
	case c.c.DoubleVal != nil:
		return c.c.DoubleVal.Nulls
	case c.c.StringVal != nil:
		return c.c.StringVal.Nulls
	case c.c.BinaryVal != nil:
		return c.c.BinaryVal.Nulls
	}
	return nil
}

func isNull(nulls []byte, i int) bool {
	k := i / 8
	return k < len(nulls) && nulls[k]&(1<<uint(i%8)) != 0
}

// integer returns value i of an integer column.
func (c column) integer(i int) (int64, bool) {
	switch {
	case c.c.ByteVal != nil:
		return int64(c.c.ByteVal.Values[i]), true
	case c.c.I16Val != nil:
		return int64(c.c.I16Val.Values[i]), true
	case c.c.I32Val != nil:
		return int64(c.c.I32Val.Values[i]), true
	case c.c.I64Val != nil:
		return c.c.I64Val.Values[i], true
	}
	return 0, false
}

// text returns value i as text, whatever its representation.
func (c column) text(i int) string {
	switch {
	case c.c.StringVal != nil:
		return c.c.StringVal.Values[i]
	case c.c.BinaryVal != nil:
		return string(c.c.BinaryVal.Values[i])
	case c.c.BoolVal != nil:
		return strconv.FormatBool(c.c.BoolVal.Values[i])
	case c.c.DoubleVal != nil:
		return strconv.FormatFloat(c.c.DoubleVal.Values[i], 'g', -1, 64)
	}
	if v, ok := c.integer(i); ok {
		return strconv.FormatInt(v, 10)
	}
	return ""
}

// appendColumn appends every value of c to b, whose type is the column's
// Arrow type.
func appendColumn(b array.Builder, c column) error {
	n := c.len()
	nulls := c.nulls()
	b.Reserve(n)
	switch bb := b.(type) {
	case *array.Int64Builder:
		if c.c.I64Val != nil {
			v := c.c.I64Val.Values
			for i := range n {
				if isNull(nulls, i) {
					bb.AppendNull()
				} else {
					bb.Append(v[i])
				}
			}
			return nil
		}
	case *array.Int32Builder:
		if c.c.I32Val != nil {
			v := c.c.I32Val.Values
			for i := range n {
				if isNull(nulls, i) {
					bb.AppendNull()
				} else {
					bb.Append(v[i])
				}
			}
			return nil
		}
	case *array.Float64Builder:
		if c.c.DoubleVal != nil {
			v := c.c.DoubleVal.Values
			for i := range n {
				if isNull(nulls, i) {
					bb.AppendNull()
				} else {
					bb.Append(v[i])
				}
			}
			return nil
		}
	case *array.StringBuilder:
		if c.c.StringVal != nil {
			v := c.c.StringVal.Values
			for i := range n {
				if isNull(nulls, i) {
					bb.AppendNull()
				} else {
					bb.Append(v[i])
				}
			}
			return nil
		}
	}
	for i := range n {
		if isNull(nulls, i) {
			b.AppendNull()
			continue
		}
		if err := appendOne(b, c, i); err != nil {
			return fmt.Errorf("row %d: %w", i, err)
		}
	}
	return nil
}

// appendOne appends value i of c through the general path.
func appendOne(b array.Builder, c column, i int) error {
	switch bb := b.(type) {
	case *array.Int8Builder, *array.Int16Builder, *array.Int32Builder, *array.Int64Builder:
		if v, ok := c.integer(i); ok {
			appendInt(b, v)
			return nil
		}
	case *array.Float32Builder:
		if c.c.DoubleVal != nil {
			bb.Append(float32(c.c.DoubleVal.Values[i]))
			return nil
		}
		if v, ok := c.integer(i); ok {
			bb.Append(float32(v))
			return nil
		}
	case *array.Float64Builder:
		if v, ok := c.integer(i); ok {
			bb.Append(float64(v))
			return nil
		}
	case *array.BooleanBuilder:
		if c.c.BoolVal != nil {
			bb.Append(c.c.BoolVal.Values[i])
			return nil
		}
	case *array.BinaryBuilder:
		if c.c.BinaryVal != nil {
			bb.Append(c.c.BinaryVal.Values[i])
			return nil
		}
	case *array.ListBuilder, *array.MapBuilder, *array.StructBuilder:
		p := &textParser{s: c.text(i)}
		if err := p.value(b, 0); err != nil {
			return err
		}
		p.space()
		if p.i != len(p.s) {
			return fmt.Errorf("unexpected %q after the value in %q", p.s[p.i:], p.s)
		}
		return nil
	}
	return appendText(b, c.text(i))
}

func appendInt(b array.Builder, v int64) {
	switch bb := b.(type) {
	case *array.Int8Builder:
		bb.Append(int8(v))
	case *array.Int16Builder:
		bb.Append(int16(v))
	case *array.Int32Builder:
		bb.Append(int32(v))
	case *array.Int64Builder:
		bb.Append(v)
	}
}

// tsLayout reads Hive's and Spark's timestamp text; fractions are optional.
const tsLayout = "2006-01-02 15:04:05.999999999"

// appendText converts one scalar value given as text.
func appendText(b array.Builder, s string) error {
	switch bb := b.(type) {
	case *array.StringBuilder:
		bb.Append(s)
	case *array.BinaryBuilder:
		bb.Append([]byte(s))
	case *array.Int8Builder, *array.Int16Builder, *array.Int32Builder, *array.Int64Builder:
		bits := map[arrow.Type]int{arrow.INT8: 8, arrow.INT16: 16, arrow.INT32: 32, arrow.INT64: 64}[b.Type().ID()]
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, bits)
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", b.Type(), s)
		}
		appendInt(b, v)
	case *array.Float32Builder:
		v, err := parseFloat(s, 32)
		if err != nil {
			return err
		}
		bb.Append(float32(v))
	case *array.Float64Builder:
		v, err := parseFloat(s, 64)
		if err != nil {
			return err
		}
		bb.Append(v)
	case *array.BooleanBuilder:
		v, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		bb.Append(v)
	case *array.Decimal128Builder:
		dt := bb.Type().(*arrow.Decimal128Type)
		v, err := decimal128.FromString(strings.TrimSpace(s), dt.Precision, dt.Scale)
		if err != nil {
			return fmt.Errorf("%q is not a %s: %v", s, dt, err)
		}
		bb.Append(v)
	case *array.Date32Builder:
		t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a date", s)
		}
		bb.Append(arrow.Date32FromTime(t))
	case *array.TimestampBuilder:
		t, err := parseTimestamp(s, bb.Type().(*arrow.TimestampType).TimeZone != "")
		if err != nil {
			return err
		}
		bb.Append(arrow.Timestamp(t.Unix()*1e6 + int64(t.Nanosecond()/1e3)))
	default:
		return fmt.Errorf("no conversion from text to %s", b.Type())
	}
	return nil
}

func parseFloat(s string, bits int) (float64, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "Infinity", "inf":
		return math.Inf(1), nil
	case "-Infinity", "-inf":
		return math.Inf(-1), nil
	}
	v, err := strconv.ParseFloat(s, bits)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return v, nil
}

// parseTimestamp reads "2024-01-02 03:04:05[.ffffff]" as wall-clock time
// (returned in UTC with the same fields); with zoned set, a trailing zone
// name ("... America/New_York", Hive's timestamp with local time zone)
// places it in that zone.
func parseTimestamp(s string, zoned bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	loc := time.UTC
	if zoned {
		if k := strings.LastIndexByte(s, ' '); k > 10 {
			if l, err := time.LoadLocation(s[k+1:]); err == nil {
				loc, s = l, s[:k]
			}
		}
	}
	s = strings.Replace(s, "T", " ", 1)
	t, err := time.ParseInLocation(tsLayout, s, loc)
	if err != nil {
		t, err = time.ParseInLocation("2006-01-02", s, loc)
		if err != nil {
			return t, fmt.Errorf("%q is not a timestamp", s)
		}
	}
	return t.UTC(), nil
}

// textParser reads the JSON-like text HiveServer2 sends for array, map and
// struct values ([1,2], {"k":1}, {1:"a"}, {"f":null}) into Arrow builders,
// guided by their types. Map keys need not be strings.
type textParser struct {
	s string
	i int
}

func (p *textParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *textParser) eat(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *textParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at %d of %q: %s", p.i, p.s, fmt.Sprintf(format, args...))
}

// token reads a scalar: a quoted string or a bare word up to a delimiter.
// quoted reports which; null is a bare "null".
func (p *textParser) token() (s string, quoted bool, err error) {
	p.space()
	if p.i >= len(p.s) {
		return "", false, p.errorf("value expected")
	}
	if p.s[p.i] == '"' {
		// The closing quote is the first one followed by a delimiter or the
		// end: Spark does not escape quotes inside nested strings.
		for j := p.i + 1; j < len(p.s); j++ {
			if p.s[j] == '\\' && j+1 < len(p.s) {
				j++
				continue
			}
			if p.s[j] != '"' {
				continue
			}
			k := j + 1
			for k < len(p.s) && p.s[k] == ' ' {
				k++
			}
			if k == len(p.s) || strings.IndexByte(",]}:", p.s[k]) >= 0 {
				raw := p.s[p.i : j+1]
				p.i = j + 1
				var u string
				if strings.IndexByte(raw, '\\') >= 0 && json.Unmarshal([]byte(raw), &u) == nil {
					return u, true, nil
				}
				return raw[1 : len(raw)-1], true, nil
			}
		}
		return "", false, p.errorf("unterminated string")
	}
	j := p.i
	for p.i < len(p.s) && strings.IndexByte(",]}:", p.s[p.i]) < 0 {
		p.i++
	}
	w := strings.TrimSpace(p.s[j:p.i])
	if w == "" {
		return "", false, p.errorf("value expected")
	}
	return w, false, nil
}

const maxValueDepth = 64

// value parses one value into b.
func (p *textParser) value(b array.Builder, depth int) error {
	if depth > maxValueDepth {
		return p.errorf("nested too deeply")
	}
	p.space()
	if strings.HasPrefix(p.s[p.i:], "null") {
		rest := p.s[p.i+4:]
		if rest == "" || strings.IndexByte(",]}: ", rest[0]) >= 0 {
			p.i += 4
			b.AppendNull()
			return nil
		}
	}
	switch bb := b.(type) {
	case *array.ListBuilder:
		if !p.eat('[') {
			return p.errorf("'[' expected")
		}
		bb.Append(true)
		if p.eat(']') {
			return nil
		}
		for {
			if err := p.value(bb.ValueBuilder(), depth+1); err != nil {
				return err
			}
			if p.eat(']') {
				return nil
			}
			if !p.eat(',') {
				return p.errorf("',' or ']' expected")
			}
		}
	case *array.MapBuilder:
		if !p.eat('{') {
			return p.errorf("'{' expected")
		}
		bb.Append(true)
		if p.eat('}') {
			return nil
		}
		for {
			if err := p.value(bb.KeyBuilder(), depth+1); err != nil {
				return err
			}
			if !p.eat(':') {
				return p.errorf("':' expected")
			}
			if err := p.value(bb.ItemBuilder(), depth+1); err != nil {
				return err
			}
			if p.eat('}') {
				return nil
			}
			if !p.eat(',') {
				return p.errorf("',' or '}' expected")
			}
		}
	case *array.StructBuilder:
		if !p.eat('{') {
			return p.errorf("'{' expected")
		}
		bb.Append(true)
		st := bb.Type().(*arrow.StructType)
		seen := make([]bool, st.NumFields())
		if !p.eat('}') {
			for {
				name, _, err := p.token()
				if err != nil {
					return err
				}
				k, ok := st.FieldIdx(name)
				if !ok {
					for j, f := range st.Fields() {
						if strings.EqualFold(f.Name, name) {
							k, ok = j, true
							break
						}
					}
				}
				if !ok || seen[k] {
					return p.errorf("unknown or repeated field %q", name)
				}
				seen[k] = true
				if !p.eat(':') {
					return p.errorf("':' expected")
				}
				if err := p.value(bb.FieldBuilder(k), depth+1); err != nil {
					return err
				}
				if p.eat('}') {
					break
				}
				if !p.eat(',') {
					return p.errorf("',' or '}' expected")
				}
			}
		}
		for k, s := range seen {
			if !s {
				bb.FieldBuilder(k).AppendNull()
			}
		}
		return nil
	}
	s, _, err := p.token()
	if err != nil {
		return err
	}
	if err := appendText(b, s); err != nil {
		return p.errorf("%v", err)
	}
	return nil
}
