package trino

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	trinoclient "github.com/trinodb/trino-go-client/trino"
)

// appendValue appends v, a value as trino-go-client returns it, to b,
// whose Arrow type arrowType(t) gave. Top-level values arrive converted
// (int64, float64, string, bool, time.Time, []byte, trino.Row); values
// nested in arrays and maps arrive as decoded JSON (json.Number, string,
// bool, []any, map[string]any), so every case accepts both.
func appendValue(b array.Builder, t sqlType, v any) error {
	if v == nil {
		b.AppendNull()
		return nil
	}
	switch b := b.(type) {
	case *array.BooleanBuilder:
		switch x := v.(type) {
		case bool:
			b.Append(x)
			return nil
		case string:
			p, err := strconv.ParseBool(x)
			if err != nil {
				return err
			}
			b.Append(p)
			return nil
		}
	case *array.Int8Builder:
		n, err := toInt(v, 8)
		if err != nil {
			return err
		}
		b.Append(int8(n))
		return nil
	case *array.Int16Builder:
		n, err := toInt(v, 16)
		if err != nil {
			return err
		}
		b.Append(int16(n))
		return nil
	case *array.Int32Builder:
		n, err := toInt(v, 32)
		if err != nil {
			return err
		}
		b.Append(int32(n))
		return nil
	case *array.Int64Builder:
		n, err := toInt(v, 64)
		if err != nil {
			return err
		}
		b.Append(n)
		return nil
	case *array.Float32Builder:
		f, err := toFloat(v)
		if err != nil {
			return err
		}
		b.Append(float32(f))
		return nil
	case *array.Float64Builder:
		f, err := toFloat(v)
		if err != nil {
			return err
		}
		b.Append(f)
		return nil
	case *array.Decimal128Builder:
		dt := b.Type().(*arrow.Decimal128Type)
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case json.Number:
			s = string(x)
		default:
			return fmt.Errorf("cannot convert %T to %s", v, t)
		}
		n, err := decimal128.FromString(s, dt.Precision, dt.Scale)
		if err != nil {
			return fmt.Errorf("decimal %q: %w", s, err)
		}
		b.Append(n)
		return nil
	case *array.StringBuilder:
		b.Append(toText(v))
		return nil
	case *array.BinaryBuilder:
		switch x := v.(type) {
		case []byte:
			b.Append(x)
			return nil
		case string:
			p, err := base64.StdEncoding.DecodeString(x)
			if err != nil {
				return fmt.Errorf("varbinary: %w", err)
			}
			b.Append(p)
			return nil
		}
	case *array.Date32Builder:
		tm, _, err := toTime(v)
		if err != nil {
			return err
		}
		days := time.Date(tm.Year(), tm.Month(), tm.Day(), 0, 0, 0, 0, time.UTC).Unix() / 86400
		b.Append(arrow.Date32(days))
		return nil
	case *array.TimestampBuilder:
		tm, zoned, err := toTime(v)
		if err != nil {
			return err
		}
		if !zoned || t.Base == "timestamp" {
			// A timestamp without time zone keeps its wall clock.
			tm = wallUTC(tm)
		}
		if b.Type().(*arrow.TimestampType).Unit == arrow.Nanosecond {
			b.Append(arrow.Timestamp(tm.UnixNano()))
		} else {
			b.Append(arrow.Timestamp(tm.UnixMicro()))
		}
		return nil
	case *array.Time64Builder:
		tm, _, err := toTime(v)
		if err != nil {
			return err
		}
		ns := int64(tm.Hour())*int64(time.Hour) + int64(tm.Minute())*int64(time.Minute) +
			int64(tm.Second())*int64(time.Second) + int64(tm.Nanosecond())
		if b.Type().(*arrow.Time64Type).Unit == arrow.Nanosecond {
			b.Append(arrow.Time64(ns))
		} else {
			b.Append(arrow.Time64(ns / 1000))
		}
		return nil
	case *array.MapBuilder: // before ListBuilder: a map is a list
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		b.Append(true)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		kb, ib := b.KeyBuilder(), b.ItemBuilder()
		for _, k := range keys {
			if err := appendValue(kb, t.Elems[0], mapKey(k)); err != nil {
				return fmt.Errorf("map key: %w", err)
			}
			if err := appendValue(ib, t.Elems[1], m[k]); err != nil {
				return fmt.Errorf("map value: %w", err)
			}
		}
		return nil
	case *array.ListBuilder:
		elems, ok := v.([]any)
		if !ok {
			break
		}
		b.Append(true)
		vb := b.ValueBuilder()
		for _, e := range elems {
			if err := appendValue(vb, t.Elems[0], e); err != nil {
				return fmt.Errorf("array element: %w", err)
			}
		}
		return nil
	case *array.StructBuilder:
		var fields []any
		switch x := v.(type) {
		case trinoclient.Row:
			if !x.Valid {
				b.AppendNull()
				return nil
			}
			fields = make([]any, x.Len())
			for i := range fields {
				fields[i] = x.Value(i)
			}
		case []any:
			fields = x
		default:
			return fmt.Errorf("cannot convert %T to %s", v, t)
		}
		if len(fields) != b.NumField() {
			return fmt.Errorf("row has %d fields, type %s has %d", len(fields), t, b.NumField())
		}
		b.Append(true)
		for i, f := range fields {
			if err := appendValue(b.FieldBuilder(i), t.Elems[i], f); err != nil {
				return fmt.Errorf("row field %d: %w", i, err)
			}
		}
		return nil
	}
	return fmt.Errorf("cannot convert %T to %s", v, t)
}

// mapKey turns a JSON object key back into a value appendValue accepts
// for any key type.
func mapKey(k string) any {
	return json.Number(k)
}

func toInt(v any, bits int) (int64, error) {
	var n int64
	var err error
	switch x := v.(type) {
	case int64:
		n = x
	case json.Number:
		n, err = strconv.ParseInt(string(x), 10, 64)
	case string:
		n, err = strconv.ParseInt(x, 10, 64)
	case float64:
		n = int64(x)
	default:
		return 0, fmt.Errorf("cannot convert %T to an integer", v)
	}
	if err != nil {
		return 0, err
	}
	if bits < 64 && (n < -(1<<(bits-1)) || n >= 1<<(bits-1)) {
		return 0, fmt.Errorf("%d overflows int%d", n, bits)
	}
	return n, nil
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case json.Number:
		return strconv.ParseFloat(string(x), 64)
	case string:
		switch x {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		return strconv.ParseFloat(x, 64)
	}
	return 0, fmt.Errorf("cannot convert %T to a float", v)
}

// toText renders textual types; structured values (KdbTree, BingTile)
// become JSON.
func toText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	case []byte:
		return string(x)
	case time.Time:
		// time with time zone arrives as a time.Time at 0000-01-01.
		return x.Format("15:04:05.999999999-07:00")
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	p, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(p)
}

// wallUTC keeps t's wall clock and reads it as UTC.
func wallUTC(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// toTime accepts a time.Time or one of Trino's date, time and timestamp
// strings ("2024-01-02", "12:34:56.789", "2024-01-02 12:34:56.789123",
// each optionally followed by a zone: " UTC", " +05:30",
// " America/New_York"); zoned reports whether the value carried a zone.
// Fractions beyond nanoseconds are truncated.
func toTime(v any) (t time.Time, zoned bool, err error) {
	switch x := v.(type) {
	case time.Time:
		return x, true, nil
	case string:
		return parseTime(x)
	}
	return time.Time{}, false, fmt.Errorf("cannot convert %T to a time", v)
}

func parseTime(s string) (time.Time, bool, error) {
	stamp, zone := s, ""
	sp := strings.LastIndexByte(s, ' ')
	if sp > 0 && sp+1 < len(s) {
		if c := s[sp+1]; c == '+' || c == '-' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' {
			stamp, zone = s[:sp], s[sp+1:]
		}
	}
	if zone == "" {
		// An offset without a space: "12:34:56+05:30".
		if j := strings.LastIndexAny(s, "+-"); j > sp && strings.LastIndexByte(s[:max(j, 0)], ':') > sp {
			stamp, zone = s[:j], s[j:]
		}
	}
	stamp = trimFraction(stamp)
	loc := time.UTC
	zoned := false
	if zone != "" {
		zoned = true
		if zone[0] == '+' || zone[0] == '-' {
			d, err := time.Parse("-07:00", zone)
			if err != nil {
				return time.Time{}, false, fmt.Errorf("time %q: zone: %w", s, err)
			}
			_, off := d.Zone()
			loc = time.FixedZone(zone, off)
		} else if zone != "UTC" && zone != "Z" {
			l, err := time.LoadLocation(zone)
			if err != nil {
				return time.Time{}, false, fmt.Errorf("time %q: %w", s, err)
			}
			loc = l
		}
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02", "15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, stamp, loc); err == nil {
			return t, zoned, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("cannot parse %q as a date or time", s)
}

// trimFraction cuts a fraction of seconds to 9 digits (Trino has up to 12).
func trimFraction(s string) string {
	i := strings.LastIndexByte(s, '.')
	if i < 0 || strings.ContainsAny(s[i:], " :-") {
		return s
	}
	if len(s)-i-1 > 9 {
		return s[:i+10]
	}
	return s
}
