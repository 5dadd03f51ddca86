package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Kinds of JSON scalars.
const (
	kindNull = iota
	kindTrue
	kindFalse
	kindNumber
	kindString
)

// scanner walks a JSON value that encoding/json has already validated (a
// json.RawMessage of a decoded request), so it only has to find token
// boundaries, not report syntax errors.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// scalar reads the scalar at the cursor: its kind and its raw bytes
// (strings keep their quotes).
func (s *scanner) scalar() (int, []byte) {
	s.ws()
	start := s.i
	switch s.b[s.i] {
	case 'n':
		s.i += 4
		return kindNull, s.b[start:s.i]
	case 't':
		s.i += 4
		return kindTrue, s.b[start:s.i]
	case 'f':
		s.i += 5
		return kindFalse, s.b[start:s.i]
	case '"':
		s.i++
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '\\':
				s.i += 2
				continue
			case '"':
				s.i++
				return kindString, s.b[start:s.i]
			}
			s.i++
		}
		return kindString, s.b[start:s.i]
	}
	for s.i < len(s.b) && numByte(s.b[s.i]) {
		s.i++
	}
	return kindNumber, s.b[start:s.i]
}

func numByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// comma consumes a ',' and reports whether there was one.
func (s *scanner) comma() bool {
	if s.peek() == ',' {
		s.i++
		return true
	}
	return false
}

// flatten calls emit for every scalar of the JSON value raw in row-major
// order, descending into nested arrays.
func flatten(raw []byte, emit func(kind int, tok []byte) error) error {
	s := &scanner{b: raw}
	return s.flatten(emit)
}

func (s *scanner) flatten(emit func(kind int, tok []byte) error) error {
	switch s.peek() {
	case '[':
		s.i++
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.flatten(emit); err != nil {
				return err
			}
			if !s.comma() {
				break
			}
		}
		s.i++ // ']'
		return nil
	case '{':
		return errors.New("data holds an object; want numbers, booleans, strings or null (flat or nested arrays)")
	case 0:
		return errors.New("data is missing")
	}
	return emit(s.scalar())
}

// unquote returns the text of a JSON string token.
func unquote(tok []byte) (string, error) {
	if bytes.IndexByte(tok, '\\') < 0 {
		return string(tok[1 : len(tok)-1]), nil
	}
	var v string
	err := json.Unmarshal(tok, &v)
	return v, err
}

func describeKind(kind int) string {
	switch kind {
	case kindNull:
		return "null"
	case kindTrue, kindFalse:
		return "a boolean"
	case kindNumber:
		return "a number"
	}
	return "a string"
}

// column builds one request column in the type the server feeds the model
// input with. add appends a JSON scalar (null is a missing value); build
// returns the array and resets the builder.
type column interface {
	add(kind int, tok []byte) error
	appendNull()
	build() arrow.Array
	release()
	len() int
}

// Column families: what JSON values a model input accepts.
const (
	famFloat32 = iota
	famFloat64
	famInt64
	famBool
	famString
)

// family picks the column kind that feeds a model input of type t, and the
// Arrow type of that column. Predict accepts any type Bind accepts, so
// narrow integer inputs get int64 columns and float16 float32 ones.
func family(t arrow.DataType) (int, arrow.DataType, bool) {
	switch t.ID() {
	case arrow.FLOAT32, arrow.FLOAT16:
		return famFloat32, arrow.PrimitiveTypes.Float32, true
	case arrow.FLOAT64, arrow.NULL, arrow.DECIMAL128:
		return famFloat64, arrow.PrimitiveTypes.Float64, true
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return famInt64, arrow.PrimitiveTypes.Int64, true
	case arrow.BOOL:
		return famBool, arrow.FixedWidthTypes.Boolean, true
	case arrow.STRING, arrow.LARGE_STRING:
		return famString, arrow.BinaryTypes.String, true
	}
	return 0, nil, false
}

func newColumn(fam int, mem memory.Allocator, n int) column {
	var c column
	switch fam {
	case famFloat32:
		c = &float32Col{b: array.NewFloat32Builder(mem)}
	case famFloat64:
		c = &float64Col{b: array.NewFloat64Builder(mem)}
	case famInt64:
		c = &int64Col{b: array.NewInt64Builder(mem)}
	case famBool:
		c = &boolCol{b: array.NewBooleanBuilder(mem)}
	default:
		c = &stringCol{b: array.NewStringBuilder(mem)}
	}
	if n > 0 {
		if r, ok := c.(interface{ reserve(int) }); ok {
			r.reserve(n)
		}
	}
	return c
}

type float32Col struct{ b *array.Float32Builder }

func (c *float32Col) add(kind int, tok []byte) error {
	switch kind {
	case kindNumber:
		v, err := strconv.ParseFloat(string(tok), 32)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return fmt.Errorf("bad number %s", tok)
		}
		c.b.Append(float32(v))
	case kindNull:
		c.b.AppendNull()
	case kindTrue:
		c.b.Append(1)
	case kindFalse:
		c.b.Append(0)
	default:
		return fmt.Errorf("want a number, got %s", describeKind(kind))
	}
	return nil
}
func (c *float32Col) appendNull()        { c.b.AppendNull() }
func (c *float32Col) build() arrow.Array { return c.b.NewArray() }
func (c *float32Col) release()           { c.b.Release() }
func (c *float32Col) len() int           { return c.b.Len() }
func (c *float32Col) reserve(n int)      { c.b.Reserve(n) }

type float64Col struct{ b *array.Float64Builder }

func (c *float64Col) add(kind int, tok []byte) error {
	switch kind {
	case kindNumber:
		v, err := strconv.ParseFloat(string(tok), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return fmt.Errorf("bad number %s", tok)
		}
		c.b.Append(v)
	case kindNull:
		c.b.AppendNull()
	case kindTrue:
		c.b.Append(1)
	case kindFalse:
		c.b.Append(0)
	default:
		return fmt.Errorf("want a number, got %s", describeKind(kind))
	}
	return nil
}
func (c *float64Col) appendNull()        { c.b.AppendNull() }
func (c *float64Col) build() arrow.Array { return c.b.NewArray() }
func (c *float64Col) release()           { c.b.Release() }
func (c *float64Col) len() int           { return c.b.Len() }
func (c *float64Col) reserve(n int)      { c.b.Reserve(n) }

type int64Col struct{ b *array.Int64Builder }

func (c *int64Col) add(kind int, tok []byte) error {
	switch kind {
	case kindNumber:
		v, err := strconv.ParseInt(string(tok), 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(string(tok), 64)
			if ferr != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
				return fmt.Errorf("want an integer, got %s", tok)
			}
			v = int64(f)
		}
		c.b.Append(v)
	case kindNull:
		c.b.AppendNull()
	case kindTrue:
		c.b.Append(1)
	case kindFalse:
		c.b.Append(0)
	default:
		return fmt.Errorf("want an integer, got %s", describeKind(kind))
	}
	return nil
}
func (c *int64Col) appendNull()        { c.b.AppendNull() }
func (c *int64Col) build() arrow.Array { return c.b.NewArray() }
func (c *int64Col) release()           { c.b.Release() }
func (c *int64Col) len() int           { return c.b.Len() }
func (c *int64Col) reserve(n int)      { c.b.Reserve(n) }

type boolCol struct{ b *array.BooleanBuilder }

func (c *boolCol) add(kind int, tok []byte) error {
	switch kind {
	case kindTrue:
		c.b.Append(true)
	case kindFalse:
		c.b.Append(false)
	case kindNull:
		c.b.AppendNull()
	case kindNumber:
		switch string(tok) {
		case "0":
			c.b.Append(false)
		case "1":
			c.b.Append(true)
		default:
			return fmt.Errorf("want a boolean, got %s", tok)
		}
	default:
		return fmt.Errorf("want a boolean, got %s", describeKind(kind))
	}
	return nil
}
func (c *boolCol) appendNull()        { c.b.AppendNull() }
func (c *boolCol) build() arrow.Array { return c.b.NewArray() }
func (c *boolCol) release()           { c.b.Release() }
func (c *boolCol) len() int           { return c.b.Len() }
func (c *boolCol) reserve(n int)      { c.b.Reserve(n) }

type stringCol struct{ b *array.StringBuilder }

func (c *stringCol) add(kind int, tok []byte) error {
	switch kind {
	case kindString:
		s, err := unquote(tok)
		if err != nil {
			return fmt.Errorf("bad string %s", tok)
		}
		c.b.Append(s)
	case kindNull:
		c.b.AppendNull()
	default:
		return fmt.Errorf("want a string, got %s", describeKind(kind))
	}
	return nil
}
func (c *stringCol) appendNull()        { c.b.AppendNull() }
func (c *stringCol) build() arrow.Array { return c.b.NewArray() }
func (c *stringCol) release()           { c.b.Release() }
func (c *stringCol) len() int           { return c.b.Len() }
func (c *stringCol) reserve(n int)      { c.b.Reserve(n) }
