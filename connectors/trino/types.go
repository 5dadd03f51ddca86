package trino

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// sqlType is a parsed Trino/PrestoDB type as the servers print it, e.g.
// "decimal(12,2)", "timestamp(3) with time zone",
// "row(a integer, \"B\" array(varchar))".
type sqlType struct {
	Base   string    // lower case, multi-word names joined by one space
	Params []int64   // numeric parameters: length, precision, scale
	Elems  []sqlType // array: element; map: key, value; row: fields
	Names  []string  // row field names ("" when anonymous)
}

// String renders t in the servers' syntax.
func (t sqlType) String() string {
	var b strings.Builder
	t.write(&b)
	return b.String()
}

func (t sqlType) write(b *strings.Builder) {
	base, suffix := t.Base, ""
	for _, s := range []string{" with time zone", " without time zone"} {
		if strings.HasSuffix(base, s) {
			base, suffix = strings.TrimSuffix(base, s), s
		}
	}
	b.WriteString(base)
	switch {
	case len(t.Elems) > 0:
		b.WriteByte('(')
		for i, e := range t.Elems {
			if i > 0 {
				b.WriteString(", ")
			}
			if t.Base == "row" && t.Names[i] != "" {
				b.WriteString(quoteIdent(t.Names[i]))
				b.WriteByte(' ')
			}
			e.write(b)
		}
		b.WriteByte(')')
	case len(t.Params) > 0:
		b.WriteByte('(')
		for i, p := range t.Params {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(p, 10))
		}
		b.WriteByte(')')
	}
	b.WriteString(suffix)
}

// parseType parses a type as Trino's DESCRIBE OUTPUT and the protocol's
// "type" field print it.
func parseType(s string) (sqlType, error) {
	p := &typeParser{s: s}
	t, err := p.typ()
	if err != nil {
		return sqlType{}, fmt.Errorf("parse type %q: %w", s, err)
	}
	p.space()
	if p.i != len(p.s) {
		return sqlType{}, fmt.Errorf("parse type %q: unexpected %q at %d", s, p.s[p.i:], p.i)
	}
	return t, nil
}

type typeParser struct {
	s string
	i int
}

func (p *typeParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *typeParser) peek() byte {
	p.space()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}

// word reads an unquoted identifier; "" when there is none.
func (p *typeParser) word() string {
	p.space()
	j := p.i
	for j < len(p.s) && isWordByte(p.s[j]) {
		j++
	}
	w := p.s[p.i:j]
	p.i = j
	return w
}

// quoted reads a "delimited" identifier with "" escapes.
func (p *typeParser) quoted() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		if c == '"' {
			if p.i < len(p.s) && p.s[p.i] == '"' {
				b.WriteByte('"')
				p.i++
				continue
			}
			return b.String(), nil
		}
		b.WriteByte(c)
	}
	return "", fmt.Errorf("unterminated quoted name")
}

// lookWord returns the next word without consuming it.
func (p *typeParser) lookWord() string {
	save := p.i
	w := p.word()
	p.i = save
	return strings.ToLower(w)
}

func (p *typeParser) expect(c byte) error {
	if p.peek() != c {
		if p.i >= len(p.s) {
			return fmt.Errorf("want %q at end", c)
		}
		return fmt.Errorf("want %q at %d, got %q", c, p.i, p.s[p.i])
	}
	p.i++
	return nil
}

const maxTypeDepth = 64

func (p *typeParser) typ() (sqlType, error) { return p.typeDepth(0) }

func (p *typeParser) typeDepth(depth int) (sqlType, error) {
	if depth > maxTypeDepth {
		return sqlType{}, fmt.Errorf("type nests deeper than %d", maxTypeDepth)
	}
	w := strings.ToLower(p.word())
	if w == "" {
		if p.i >= len(p.s) {
			return sqlType{}, fmt.Errorf("want a type name at end")
		}
		return sqlType{}, fmt.Errorf("want a type name at %d, got %q", p.i, p.s[p.i])
	}
	t := sqlType{Base: w}
	// Multi-word names without parameters in the middle.
	switch w {
	case "double":
		if p.lookWord() == "precision" {
			p.word()
		}
	case "interval":
		// interval day to second, interval year to month
		for k := 0; k < 3 && p.lookWord() != ""; k++ {
			t.Base += " " + strings.ToLower(p.word())
		}
	}
	if p.peek() == '(' {
		p.i++
		switch w {
		case "array", "map":
			for {
				e, err := p.typeDepth(depth + 1)
				if err != nil {
					return sqlType{}, err
				}
				t.Elems = append(t.Elems, e)
				if p.peek() != ',' {
					break
				}
				p.i++
			}
		case "row":
			for {
				name, e, err := p.field(depth + 1)
				if err != nil {
					return sqlType{}, err
				}
				t.Names = append(t.Names, name)
				t.Elems = append(t.Elems, e)
				if p.peek() != ',' {
					break
				}
				p.i++
			}
		default:
			for {
				p.space()
				j := p.i
				for j < len(p.s) && (p.s[j] >= '0' && p.s[j] <= '9' || j == p.i && p.s[j] == '-') {
					j++
				}
				n, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
				if err != nil {
					return sqlType{}, fmt.Errorf("want a number at %d", p.i)
				}
				p.i = j
				t.Params = append(t.Params, n)
				if p.peek() != ',' {
					break
				}
				p.i++
			}
		}
		if err := p.expect(')'); err != nil {
			return sqlType{}, err
		}
	}
	if w == "time" || w == "timestamp" {
		switch p.lookWord() {
		case "with", "without":
			suffix := p.word()
			for _, want := range []string{"time", "zone"} {
				if x := p.lookWord(); x != want {
					return sqlType{}, fmt.Errorf("want %q after %s", want, suffix)
				}
				p.word()
			}
			if strings.EqualFold(suffix, "with") {
				t.Base += " with time zone"
			}
		}
	}
	switch {
	case t.Base == "array" && len(t.Elems) != 1:
		return sqlType{}, fmt.Errorf("array needs one element type")
	case t.Base == "map" && len(t.Elems) != 2:
		return sqlType{}, fmt.Errorf("map needs a key and a value type")
	case t.Base == "row" && len(t.Elems) == 0:
		return sqlType{}, fmt.Errorf("row needs fields")
	}
	return t, nil
}

// field parses one row field: [name] type.
func (p *typeParser) field(depth int) (string, sqlType, error) {
	if p.peek() == '"' {
		name, err := p.quoted()
		if err != nil {
			return "", sqlType{}, err
		}
		t, err := p.typeDepth(depth)
		return name, t, err
	}
	save := p.i
	first := p.word()
	if first == "" {
		return "", sqlType{}, fmt.Errorf("want a field at %d", p.i)
	}
	// An anonymous field is a type alone: the next thing is ',', ')' or
	// '(' or a word continuing a multi-word type name.
	next := p.peek()
	lw := strings.ToLower(first)
	anonymous := next == ',' || next == ')' || next == '(' ||
		(lw == "double" && p.lookWord() == "precision") ||
		(lw == "interval") ||
		((lw == "time" || lw == "timestamp") && (p.lookWord() == "with" || p.lookWord() == "without"))
	if anonymous {
		p.i = save
		t, err := p.typeDepth(depth)
		return "", t, err
	}
	t, err := p.typeDepth(depth)
	return first, t, err
}

// quoteIdent quotes a SQL identifier for Trino and PrestoDB.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// Arrow mapping. See doc.go for the table.

// arrowType maps a Trino type to Arrow.
func arrowType(t sqlType) arrow.DataType {
	switch t.Base {
	case "boolean":
		return arrow.FixedWidthTypes.Boolean
	case "tinyint":
		return arrow.PrimitiveTypes.Int8
	case "smallint":
		return arrow.PrimitiveTypes.Int16
	case "integer", "int":
		return arrow.PrimitiveTypes.Int32
	case "bigint":
		return arrow.PrimitiveTypes.Int64
	case "real":
		return arrow.PrimitiveTypes.Float32
	case "double", "double precision":
		return arrow.PrimitiveTypes.Float64
	case "decimal":
		p, s := int32(38), int32(0)
		if len(t.Params) > 0 {
			p = int32(t.Params[0])
		}
		if len(t.Params) > 1 {
			s = int32(t.Params[1])
		}
		if p < 1 || p > 38 || s < 0 || s > p {
			return arrow.BinaryTypes.String
		}
		return &arrow.Decimal128Type{Precision: p, Scale: s}
	case "varbinary":
		return arrow.BinaryTypes.Binary
	case "date":
		return arrow.FixedWidthTypes.Date32
	case "timestamp":
		return &arrow.TimestampType{Unit: timeUnit(t)}
	case "timestamp with time zone":
		return &arrow.TimestampType{Unit: timeUnit(t), TimeZone: "UTC"}
	case "time":
		if timeUnit(t) == arrow.Nanosecond {
			return arrow.FixedWidthTypes.Time64ns
		}
		return arrow.FixedWidthTypes.Time64us
	case "array":
		return arrow.ListOf(arrowType(t.Elems[0]))
	case "map":
		return arrow.MapOf(arrowType(t.Elems[0]), arrowType(t.Elems[1]))
	case "row":
		fields := make([]arrow.Field, len(t.Elems))
		for i, e := range t.Elems {
			name := t.Names[i]
			if name == "" {
				name = "field" + strconv.Itoa(i)
			}
			fields[i] = arrow.Field{Name: name, Type: arrowType(e), Nullable: true}
		}
		return arrow.StructOf(fields...)
	}
	if binaryTypes[t.Base] {
		return arrow.BinaryTypes.Binary
	}
	// varchar, char, json, uuid, ipaddress, intervals, time with time
	// zone, geometry, anything unknown: text.
	return arrow.BinaryTypes.String
}

// binaryTypes arrive base64-encoded (no textual form).
var binaryTypes = map[string]bool{
	"hyperloglog": true, "p4hyperloglog": true, "setdigest": true, "qdigest": true,
	"tdigest": true, "khyperloglog": true,
}

// timeUnit is microseconds up to precision 6 (Trino's default for
// timestamp(3) and timestamp(6)), nanoseconds above (precision 7-12,
// truncated to nanoseconds).
func timeUnit(t sqlType) arrow.TimeUnit {
	p := int64(3)
	if len(t.Params) > 0 {
		p = t.Params[0]
	}
	if p > 6 {
		return arrow.Nanosecond
	}
	return arrow.Microsecond
}
