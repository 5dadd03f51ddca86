package postgres

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// PostgreSQL type OIDs the connector maps natively.
const (
	oidBool        = 16
	oidBytea       = 17
	oidChar        = 18
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// arrayElem maps the array types of the scalar types above to their
// element type.
var arrayElem = map[uint32]uint32{
	1000: oidBool, 1001: oidBytea, 1002: oidChar, 1003: oidName, 1005: oidInt2, 1007: oidInt4,
	1009: oidText, 1014: oidBPChar, 1015: oidVarchar, 1016: oidInt8, 1021: oidFloat4,
	1022: oidFloat8, 1115: oidTimestamp, 1182: oidDate, 1183: oidTime, 1185: oidTimestamptz,
	1231: oidNumeric, 2951: oidUUID, 199: oidJSON, 3807: oidJSONB, 1028: oidOID,
}

// Unconstrained numeric (no precision in the column type, as in sum() or
// avg() results) reads as decimal128(38, 9): values are rounded half away
// from zero to 9 decimals; an integer part beyond 29 digits is an error.
// The option numeric=string reads every numeric as its exact text.
const (
	defaultNumericPrecision = 38
	defaultNumericScale     = 9
)

// pgEpochMicros is 2000-01-01 (PostgreSQL's epoch) in Unix microseconds.
const (
	pgEpochMicros = 946684800000000
	pgEpochDays   = 10957
)

// column is how one result column is read: its Arrow type, whether the
// query casts it to text, and the decoder of its binary values.
type column struct {
	name   string
	oid    uint32
	typmod int32
	typ    arrow.DataType
	text   bool // selected as col::text and read as a string
	dec    decoder
}

// decoder appends one non-NULL binary value to b.
type decoder func(b array.Builder, v []byte) error

// numericAsString is set by the numeric=string option.
type typeOptions struct {
	numericAsString bool
}

// mapColumn maps a result column to Arrow.
func mapColumn(name string, oid uint32, typmod int32, o typeOptions) column {
	c := column{name: name, oid: oid, typmod: typmod}
	if typ, dec, ok := mapScalar(oid, typmod, o); ok {
		c.typ, c.dec = typ, dec
		return c
	}
	if elem, ok := arrayElem[oid]; ok {
		if et, edec, ok := mapScalar(elem, typmod, o); ok {
			c.typ = arrow.ListOf(et)
			c.dec = listDecoder(edec)
			return c
		}
	}
	// Anything else (interval, time with time zone, inet, enums, ranges,
	// geometric types, composite types, arrays of those...) reads as its
	// text form.
	c.typ, c.text, c.dec = arrow.BinaryTypes.String, true, decodeText
	return c
}

func mapScalar(oid uint32, typmod int32, o typeOptions) (arrow.DataType, decoder, bool) {
	switch oid {
	case oidBool:
		return arrow.FixedWidthTypes.Boolean, decodeBool, true
	case oidInt2:
		return arrow.PrimitiveTypes.Int16, decodeInt2, true
	case oidInt4:
		return arrow.PrimitiveTypes.Int32, decodeInt4, true
	case oidInt8:
		return arrow.PrimitiveTypes.Int64, decodeInt8, true
	case oidOID:
		return arrow.PrimitiveTypes.Uint32, decodeOID, true
	case oidFloat4:
		return arrow.PrimitiveTypes.Float32, decodeFloat4, true
	case oidFloat8:
		return arrow.PrimitiveTypes.Float64, decodeFloat8, true
	case oidText, oidVarchar, oidBPChar, oidName, oidChar, oidJSON:
		return arrow.BinaryTypes.String, decodeText, true
	case oidJSONB:
		return arrow.BinaryTypes.String, decodeJSONB, true
	case oidBytea:
		return arrow.BinaryTypes.Binary, decodeBytes, true
	case oidUUID:
		return arrow.BinaryTypes.String, decodeUUID, true
	case oidDate:
		return arrow.FixedWidthTypes.Date32, decodeDate, true
	case oidTime:
		return arrow.FixedWidthTypes.Time64us, decodeTime, true
	case oidTimestamp:
		return &arrow.TimestampType{Unit: arrow.Microsecond}, decodeTimestamp, true
	case oidTimestamptz:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, decodeTimestamp, true
	case oidNumeric:
		p, s := numericTypmod(typmod)
		if o.numericAsString || p > 38 {
			return nil, nil, false
		}
		return &arrow.Decimal128Type{Precision: p, Scale: s}, numericDecoder(p, s), true
	}
	return nil, nil, false
}

// numericTypmod decodes numeric(p,s) from a type modifier; -1 (no
// modifier) gives the default decimal128(38, 9).
func numericTypmod(typmod int32) (p, s int32) {
	if typmod < 4 {
		return defaultNumericPrecision, defaultNumericScale
	}
	t := typmod - 4
	p, s = (t>>16)&0xffff, t&0xffff
	if s > 0x7ff { // negative scales (PostgreSQL 15+) are stored as 11-bit two's complement
		return defaultNumericPrecision, defaultNumericScale
	}
	return p, s
}

var errShort = errors.New("short binary value")

func decodeBool(b array.Builder, v []byte) error {
	if len(v) != 1 {
		return errShort
	}
	b.(*array.BooleanBuilder).Append(v[0] != 0)
	return nil
}

func decodeInt2(b array.Builder, v []byte) error {
	if len(v) != 2 {
		return errShort
	}
	b.(*array.Int16Builder).Append(int16(binary.BigEndian.Uint16(v)))
	return nil
}

func decodeInt4(b array.Builder, v []byte) error {
	if len(v) != 4 {
		return errShort
	}
	b.(*array.Int32Builder).Append(int32(binary.BigEndian.Uint32(v)))
	return nil
}

func decodeOID(b array.Builder, v []byte) error {
	if len(v) != 4 {
		return errShort
	}
	b.(*array.Uint32Builder).Append(binary.BigEndian.Uint32(v))
	return nil
}

func decodeInt8(b array.Builder, v []byte) error {
	if len(v) != 8 {
		return errShort
	}
	b.(*array.Int64Builder).Append(int64(binary.BigEndian.Uint64(v)))
	return nil
}

func decodeFloat4(b array.Builder, v []byte) error {
	if len(v) != 4 {
		return errShort
	}
	b.(*array.Float32Builder).Append(math.Float32frombits(binary.BigEndian.Uint32(v)))
	return nil
}

func decodeFloat8(b array.Builder, v []byte) error {
	if len(v) != 8 {
		return errShort
	}
	b.(*array.Float64Builder).Append(math.Float64frombits(binary.BigEndian.Uint64(v)))
	return nil
}

func decodeText(b array.Builder, v []byte) error {
	b.(*array.StringBuilder).BinaryBuilder.Append(v)
	return nil
}

func decodeJSONB(b array.Builder, v []byte) error {
	if len(v) < 1 || v[0] != 1 {
		return fmt.Errorf("unknown jsonb binary version")
	}
	b.(*array.StringBuilder).BinaryBuilder.Append(v[1:])
	return nil
}

func decodeBytes(b array.Builder, v []byte) error {
	b.(*array.BinaryBuilder).Append(v)
	return nil
}

func decodeUUID(b array.Builder, v []byte) error {
	if len(v) != 16 {
		return errShort
	}
	var s [36]byte
	hex.Encode(s[0:8], v[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], v[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], v[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], v[8:10])
	s[23] = '-'
	hex.Encode(s[24:], v[10:16])
	b.(*array.StringBuilder).BinaryBuilder.Append(s[:])
	return nil
}

func decodeDate(b array.Builder, v []byte) error {
	if len(v) != 4 {
		return errShort
	}
	d := int32(binary.BigEndian.Uint32(v))
	if d == math.MaxInt32 || d == math.MinInt32 {
		return errors.New("date infinity has no Arrow representation")
	}
	b.(*array.Date32Builder).Append(arrow.Date32(d + pgEpochDays))
	return nil
}

func decodeTime(b array.Builder, v []byte) error {
	if len(v) != 8 {
		return errShort
	}
	b.(*array.Time64Builder).Append(arrow.Time64(int64(binary.BigEndian.Uint64(v))))
	return nil
}

func decodeTimestamp(b array.Builder, v []byte) error {
	if len(v) != 8 {
		return errShort
	}
	us := int64(binary.BigEndian.Uint64(v))
	if us == math.MaxInt64 || us == math.MinInt64 {
		return errors.New("timestamp infinity has no Arrow representation")
	}
	b.(*array.TimestampBuilder).Append(arrow.Timestamp(us + pgEpochMicros))
	return nil
}

// numericDecoder decodes PostgreSQL's binary numeric (base-10000 digits
// with a weight) into decimal128(p, s), rounding half away from zero to s
// decimals and refusing values that do not fit p digits. Values that fit an
// int64 take a path without allocations (numericSmall); the rest go through
// math/big (numericBig), which also writes the errors.
func numericDecoder(p, s int32) decoder {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil)
	return func(b array.Builder, v []byte) error {
		if len(v) < 8 {
			return errShort
		}
		ndigits := int(binary.BigEndian.Uint16(v[0:]))
		if len(v) < 8+2*ndigits {
			return errShort
		}
		if n, ok := numericSmall(v, p, s); ok {
			b.(*array.Decimal128Builder).Append(decimal128.FromI64(n))
			return nil
		}
		n, err := numericBig(v, p, s, limit)
		if err != nil {
			return err
		}
		b.(*array.Decimal128Builder).Append(n)
		return nil
	}
}

// pow10u are the powers of ten that fit a uint64.
var pow10u = [20]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
	1e15, 1e16, 1e17, 1e18, 1e19}

// numericSmall is numericBig for precisions up to 18 and values whose
// digits fit a uint64: ok is false whenever it cannot tell (then
// numericBig decides, errors included). v is a whole binary numeric of a
// checked length.
func numericSmall(v []byte, p, s int32) (int64, bool) {
	if p > 18 {
		return 0, false
	}
	ndigits := int(binary.BigEndian.Uint16(v[0:]))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	if sign != 0x0000 && sign != 0x4000 {
		return 0, false
	}
	var n uint64
	for i := range ndigits {
		d := uint64(binary.BigEndian.Uint16(v[8+2*i:]))
		if n > (math.MaxUint64-d)/10000 {
			return 0, false
		}
		n = n*10000 + d
	}
	e := 4*(weight-ndigits+1) + int(s)
	switch {
	case n == 0:
	case e >= 0:
		if e >= len(pow10u) || n > math.MaxUint64/pow10u[e] {
			return 0, false
		}
		n *= pow10u[e]
	case -e >= len(pow10u):
		n = 0 // below half a unit of the last decimal: rounds to zero
	default:
		d := pow10u[-e]
		q, r := n/d, n%d
		if r >= d-r { // 2r >= d, half away from zero
			q++
		}
		n = q
	}
	if n >= pow10u[p] {
		return 0, false
	}
	if sign == 0x4000 {
		return -int64(n), true
	}
	return int64(n), true
}

// numericBig decodes any binary numeric (of a checked length) into
// decimal128(p, s); limit is 10^p.
func numericBig(v []byte, p, s int32, limit *big.Int) (decimal128.Num, error) {
	ndigits := int(binary.BigEndian.Uint16(v[0:]))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	switch sign {
	case 0x0000, 0x4000:
	default:
		return decimal128.Num{}, fmt.Errorf("numeric NaN or infinity has no decimal128 representation (use option numeric=string)")
	}
	n := new(big.Int)
	tenK := big.NewInt(10000)
	for i := 0; i < ndigits; i++ {
		n.Mul(n, tenK)
		n.Add(n, big.NewInt(int64(binary.BigEndian.Uint16(v[8+2*i:]))))
	}
	// n * 10^(4*(weight-ndigits+1)) is the value; scale it by 10^s.
	e := 4*(weight-ndigits+1) + int(s)
	if e >= 0 {
		n.Mul(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(e)), nil))
	} else {
		d := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-e)), nil)
		q, r := new(big.Int).QuoRem(n, d, new(big.Int))
		if r.Lsh(r, 1).Cmp(d) >= 0 {
			q.Add(q, big.NewInt(1))
		}
		n = q
	}
	if n.Cmp(limit) >= 0 {
		return decimal128.Num{}, fmt.Errorf("numeric value does not fit decimal128(%d,%d) (use option numeric=string)", p, s)
	}
	if sign == 0x4000 {
		n.Neg(n)
	}
	return decimal128.FromBigInt(n), nil
}

// listDecoder decodes a one-dimensional binary array.
func listDecoder(elem decoder) decoder {
	return func(b array.Builder, v []byte) error {
		lb := b.(*array.ListBuilder)
		if len(v) < 12 {
			return errShort
		}
		ndim := int32(binary.BigEndian.Uint32(v[0:]))
		if ndim == 0 {
			lb.AppendEmptyValue()
			return nil
		}
		if ndim != 1 {
			return fmt.Errorf("%d-dimensional arrays are not supported (one dimension only)", ndim)
		}
		if len(v) < 20 {
			return errShort
		}
		n := int(int32(binary.BigEndian.Uint32(v[12:])))
		lb.Append(true)
		vb := lb.ValueBuilder()
		at := 20
		for i := 0; i < n; i++ {
			if len(v) < at+4 {
				return errShort
			}
			l := int(int32(binary.BigEndian.Uint32(v[at:])))
			at += 4
			if l < 0 {
				vb.AppendNull()
				continue
			}
			if len(v) < at+l {
				return errShort
			}
			if err := elem(vb, v[at:at+l]); err != nil {
				return err
			}
			at += l
		}
		return nil
	}
}

// ddlType is the PostgreSQL column type a sink creates for an Arrow type.
func ddlType(t arrow.DataType) (string, error) {
	switch t := t.(type) {
	case *arrow.BooleanType:
		return "boolean", nil
	case *arrow.Int8Type, *arrow.Int16Type, *arrow.Uint8Type:
		return "smallint", nil
	case *arrow.Int32Type, *arrow.Uint16Type:
		return "integer", nil
	case *arrow.Int64Type, *arrow.Uint32Type:
		return "bigint", nil
	case *arrow.Uint64Type:
		return "numeric(20,0)", nil
	case *arrow.Float16Type, *arrow.Float32Type:
		return "real", nil
	case *arrow.Float64Type:
		return "double precision", nil
	case *arrow.StringType, *arrow.LargeStringType, *arrow.StringViewType:
		return "text", nil
	case *arrow.BinaryType, *arrow.LargeBinaryType, *arrow.FixedSizeBinaryType, *arrow.BinaryViewType:
		return "bytea", nil
	case *arrow.Date32Type, *arrow.Date64Type:
		return "date", nil
	case *arrow.Time32Type, *arrow.Time64Type:
		return "time", nil
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return "timestamptz", nil
		}
		return "timestamp", nil
	case *arrow.Decimal128Type:
		return fmt.Sprintf("numeric(%d,%d)", t.Precision, t.Scale), nil
	case *arrow.Decimal256Type:
		return fmt.Sprintf("numeric(%d,%d)", t.Precision, t.Scale), nil
	case *arrow.ListType:
		e, err := ddlType(t.Elem())
		if err != nil {
			return "", err
		}
		if strings.HasSuffix(e, "]") {
			return "", fmt.Errorf("nested lists are not supported")
		}
		return e + "[]", nil
	case *arrow.LargeListType:
		return ddlType(arrow.ListOf(t.Elem()))
	}
	return "", fmt.Errorf("Arrow type %s has no PostgreSQL mapping", t)
}
