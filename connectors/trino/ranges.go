package trino

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// rangeKind is how a partition column's values are cut into ranges.
type rangeKind int

const (
	rangeInt         rangeKind = iota // tinyint ... bigint: int64
	rangeFloat                        // real, double, decimal: float64
	rangeDate                         // date: days since 1970-01-01 (int64)
	rangeTimestamp                    // timestamp(p): wall-clock microseconds (int64)
	rangeTimestampTZ                  // timestamp(p) with time zone: UTC microseconds (int64)
)

func kindOf(t sqlType) (rangeKind, error) {
	switch t.Base {
	case "tinyint", "smallint", "integer", "int", "bigint":
		return rangeInt, nil
	case "real", "double", "double precision", "decimal":
		return rangeFloat, nil
	case "date":
		return rangeDate, nil
	case "timestamp":
		return rangeTimestamp, nil
	case "timestamp with time zone":
		return rangeTimestampTZ, nil
	}
	return 0, fmt.Errorf("type %s cannot be split into ranges (want a number, date or timestamp)", t)
}

// bound is one cut point: a SQL literal and a text for people.
type bound struct {
	sql, text string
}

// parse reads a lower_bound or upper_bound option.
func (k rangeKind) parse(s string) (any, error) {
	s = strings.TrimSpace(s)
	switch k {
	case rangeInt:
		return strconv.ParseInt(s, 10, 64)
	case rangeFloat:
		f, err := strconv.ParseFloat(s, 64)
		if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return nil, fmt.Errorf("%q is not finite", s)
		}
		return f, err
	case rangeDate, rangeTimestamp, rangeTimestampTZ:
		t, zoned, err := parseTime(s)
		if err != nil {
			return nil, err
		}
		return k.value(timeValue{t, zoned})
	}
	return nil, fmt.Errorf("unknown range kind")
}

type timeValue struct {
	t     time.Time
	zoned bool
}

// value converts a min or max as the driver returns it.
func (k rangeKind) value(v any) (any, error) {
	switch k {
	case rangeInt:
		return toInt(v, 64)
	case rangeFloat:
		return toFloat(v)
	}
	var t time.Time
	zoned := true
	switch x := v.(type) {
	case timeValue:
		t, zoned = x.t, x.zoned
	case time.Time:
		t = x
	case string:
		var err error
		if t, zoned, err = parseTime(x); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("cannot convert %T to a time", v)
	}
	switch k {
	case rangeDate:
		return wallUTC(t).Unix() / 86400, nil
	case rangeTimestamp:
		return wallUTC(t).UnixMicro(), nil
	default: // rangeTimestampTZ
		if !zoned {
			t = wallUTC(t)
		}
		return t.UnixMicro(), nil
	}
}

// bounds returns at most n-1 increasing cut points strictly inside
// (lo, hi]; splits are (-inf, b0), [b0, b1), ..., [b_last, +inf).
func (k rangeKind) bounds(lo, hi any, n int) []bound {
	if k == rangeFloat {
		l, h := lo.(float64), hi.(float64)
		if !(h > l) {
			return nil
		}
		var out []bound
		prev := l
		for i := 1; i < n; i++ {
			b := l + (h-l)*float64(i)/float64(n)
			if b <= prev || b > h {
				continue
			}
			prev = b
			text := strconv.FormatFloat(b, 'g', -1, 64)
			out = append(out, bound{sql: "DOUBLE '" + text + "'", text: text})
		}
		return out
	}
	l, h := lo.(int64), hi.(int64)
	if h <= l {
		return nil
	}
	// Width hi-lo+1 may overflow int64: use big integers.
	width := new(big.Int).Sub(big.NewInt(h), big.NewInt(l))
	width.Add(width, big.NewInt(1))
	if width.IsInt64() && width.Int64() < int64(n) {
		n = int(width.Int64())
	}
	var out []bound
	prev := l
	for i := 1; i < n; i++ {
		b := new(big.Int).Mul(width, big.NewInt(int64(i)))
		b.Quo(b, big.NewInt(int64(n)))
		b.Add(b, big.NewInt(l))
		v := b.Int64()
		if v <= prev {
			continue
		}
		prev = v
		out = append(out, k.literal(v))
	}
	return out
}

func (k rangeKind) literal(v int64) bound {
	switch k {
	case rangeDate:
		s := time.Unix(v*86400, 0).UTC().Format("2006-01-02")
		return bound{sql: "DATE '" + s + "'", text: s}
	case rangeTimestamp:
		s := time.UnixMicro(v).UTC().Format("2006-01-02 15:04:05.000000")
		return bound{sql: "TIMESTAMP '" + s + "'", text: s}
	case rangeTimestampTZ:
		s := time.UnixMicro(v).UTC().Format("2006-01-02 15:04:05.000000")
		return bound{sql: "TIMESTAMP '" + s + " UTC'", text: s + " UTC"}
	}
	s := strconv.FormatInt(v, 10)
	return bound{sql: s, text: s}
}
