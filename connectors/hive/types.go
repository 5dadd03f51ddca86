package hive

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/beltran/gohive/hiveserver"
)

// htype is a parsed Hive type: "int", "decimal(10,2)",
// "array<struct<a:int,b:string>>", "map<string,bigint>".
type htype struct {
	name   string // lower case base name: int, decimal, array, map, struct, ...
	prec   int32  // decimal precision
	scale  int32  // decimal scale
	elem   *htype // array element; map value
	key    *htype // map key
	fields []hfield
}

type hfield struct {
	name string
	typ  *htype
}

// parseType parses a Hive type string as DESCRIBE prints it.
func parseType(s string) (*htype, error) {
	p := &typeParser{s: s}
	t, err := p.parse(0)
	if err != nil {
		return nil, fmt.Errorf("type %q: %w", s, err)
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("type %q: unexpected %q at %d", s, p.s[p.i:], p.i)
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

func (p *typeParser) word() string {
	p.space()
	j := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '<' || c == '>' || c == ',' || c == '(' || c == ')' || c == ':' || c == ' ' {
			break
		}
		p.i++
	}
	return p.s[j:p.i]
}

func (p *typeParser) expect(c byte) error {
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != c {
		return fmt.Errorf("want %q at %d", c, p.i)
	}
	p.i++
	return nil
}

func (p *typeParser) peek(c byte) bool {
	p.space()
	return p.i < len(p.s) && p.s[p.i] == c
}

const maxTypeDepth = 64

func (p *typeParser) parse(depth int) (*htype, error) {
	if depth > maxTypeDepth {
		return nil, fmt.Errorf("nested too deeply")
	}
	w := strings.ToLower(p.word())
	if w == "" {
		return nil, fmt.Errorf("missing type name at %d", p.i)
	}
	t := &htype{name: w}
	switch w {
	case "array":
		if err := p.expect('<'); err != nil {
			return nil, err
		}
		e, err := p.parse(depth + 1)
		if err != nil {
			return nil, err
		}
		t.elem = e
		return t, p.expect('>')
	case "map":
		if err := p.expect('<'); err != nil {
			return nil, err
		}
		k, err := p.parse(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := p.expect(','); err != nil {
			return nil, err
		}
		v, err := p.parse(depth + 1)
		if err != nil {
			return nil, err
		}
		t.key, t.elem = k, v
		return t, p.expect('>')
	case "struct":
		if err := p.expect('<'); err != nil {
			return nil, err
		}
		for !p.peek('>') {
			if len(t.fields) > 0 {
				if err := p.expect(','); err != nil {
					return nil, err
				}
			}
			name := p.word()
			if strings.HasPrefix(name, "`") {
				// A quoted field name may hold any character but '`'.
				p.i -= len(name)
				end := strings.IndexByte(p.s[p.i+1:], '`')
				if end < 0 {
					return nil, fmt.Errorf("unterminated field name at %d", p.i)
				}
				name = p.s[p.i+1 : p.i+1+end]
				p.i += end + 2
			}
			if name == "" {
				return nil, fmt.Errorf("missing field name at %d", p.i)
			}
			if err := p.expect(':'); err != nil {
				return nil, err
			}
			ft, err := p.parse(depth + 1)
			if err != nil {
				return nil, err
			}
			t.fields = append(t.fields, hfield{name: name, typ: ft})
		}
		return t, p.expect('>')
	case "decimal", "numeric":
		t.name = "decimal"
		t.prec, t.scale = 10, 0 // Hive's default decimal
		if p.peek('(') {
			p.i++
			n, err := strconv.Atoi(p.word())
			if err != nil {
				return nil, fmt.Errorf("decimal precision: %w", err)
			}
			t.prec = int32(n)
			if p.peek(',') {
				p.i++
				m, err := strconv.Atoi(p.word())
				if err != nil {
					return nil, fmt.Errorf("decimal scale: %w", err)
				}
				t.scale = int32(m)
			}
			if err := p.expect(')'); err != nil {
				return nil, err
			}
		}
		if t.prec < 1 || t.prec > 38 || t.scale < 0 || t.scale > t.prec {
			return nil, fmt.Errorf("decimal(%d,%d) out of range", t.prec, t.scale)
		}
		return t, nil
	case "varchar", "char":
		if p.peek('(') {
			p.i++
			if _, err := strconv.Atoi(p.word()); err != nil {
				return nil, fmt.Errorf("%s length: %w", w, err)
			}
			if err := p.expect(')'); err != nil {
				return nil, err
			}
		}
		return t, nil
	}
	return t, nil
}

// arrowType maps a Hive type to Arrow; see the package comment.
func (t *htype) arrowType() arrow.DataType {
	switch t.name {
	case "tinyint", "byte":
		return arrow.PrimitiveTypes.Int8
	case "smallint", "short":
		return arrow.PrimitiveTypes.Int16
	case "int", "integer":
		return arrow.PrimitiveTypes.Int32
	case "bigint", "long":
		return arrow.PrimitiveTypes.Int64
	case "float", "real":
		return arrow.PrimitiveTypes.Float32
	case "double":
		return arrow.PrimitiveTypes.Float64
	case "boolean":
		return arrow.FixedWidthTypes.Boolean
	case "decimal":
		return &arrow.Decimal128Type{Precision: t.prec, Scale: t.scale}
	case "date":
		return arrow.FixedWidthTypes.Date32
	case "timestamp", "timestamp_ntz":
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	case "timestamp with local time zone", "timestamp_ltz":
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case "binary":
		return arrow.BinaryTypes.Binary
	case "array":
		return arrow.ListOf(t.elem.arrowType())
	case "map":
		return arrow.MapOf(t.key.arrowType(), t.elem.arrowType())
	case "struct":
		fs := make([]arrow.Field, len(t.fields))
		for i, f := range t.fields {
			fs[i] = arrow.Field{Name: f.name, Type: f.typ.arrowType(), Nullable: true}
		}
		return arrow.StructOf(fs...)
	}
	return arrow.BinaryTypes.String
}

// arrowFromDesc maps a result-set column type to Arrow. Complex types need
// full, the column's type string from DESCRIBE; without it they are text.
func arrowFromDesc(d *hiveserver.TTypeDesc, full string) (arrow.DataType, error) {
	if d == nil || len(d.Types) == 0 || d.Types[0].PrimitiveEntry == nil {
		return arrow.BinaryTypes.String, nil
	}
	e := d.Types[0].PrimitiveEntry
	q := func(name string, def int32) int32 {
		if e.TypeQualifiers != nil {
			if v, ok := e.TypeQualifiers.Qualifiers[name]; ok && v != nil && v.I32Value != nil {
				return *v.I32Value
			}
		}
		return def
	}
	switch e.Type {
	case hiveserver.TTypeId_BOOLEAN_TYPE:
		return arrow.FixedWidthTypes.Boolean, nil
	case hiveserver.TTypeId_TINYINT_TYPE:
		return arrow.PrimitiveTypes.Int8, nil
	case hiveserver.TTypeId_SMALLINT_TYPE:
		return arrow.PrimitiveTypes.Int16, nil
	case hiveserver.TTypeId_INT_TYPE:
		return arrow.PrimitiveTypes.Int32, nil
	case hiveserver.TTypeId_BIGINT_TYPE:
		return arrow.PrimitiveTypes.Int64, nil
	case hiveserver.TTypeId_FLOAT_TYPE:
		return arrow.PrimitiveTypes.Float32, nil
	case hiveserver.TTypeId_DOUBLE_TYPE:
		return arrow.PrimitiveTypes.Float64, nil
	case hiveserver.TTypeId_DECIMAL_TYPE:
		p, s := q("precision", 38), q("scale", 18)
		if p < 1 || p > 38 || s < 0 || s > p {
			return nil, fmt.Errorf("decimal(%d,%d) out of range", p, s)
		}
		return &arrow.Decimal128Type{Precision: p, Scale: s}, nil
	case hiveserver.TTypeId_DATE_TYPE:
		return arrow.FixedWidthTypes.Date32, nil
	case hiveserver.TTypeId_TIMESTAMP_TYPE:
		return &arrow.TimestampType{Unit: arrow.Microsecond}, nil
	case hiveserver.TTypeId_TIMESTAMPLOCALTZ_TYPE:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, nil
	case hiveserver.TTypeId_BINARY_TYPE:
		return arrow.BinaryTypes.Binary, nil
	case hiveserver.TTypeId_ARRAY_TYPE, hiveserver.TTypeId_MAP_TYPE, hiveserver.TTypeId_STRUCT_TYPE:
		if full == "" {
			return arrow.BinaryTypes.String, nil
		}
		t, err := parseType(full)
		if err != nil {
			return nil, err
		}
		if t.name != "array" && t.name != "map" && t.name != "struct" {
			return arrow.BinaryTypes.String, nil
		}
		return t.arrowType(), nil
	}
	return arrow.BinaryTypes.String, nil
}
