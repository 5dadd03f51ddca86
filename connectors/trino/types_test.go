package trino

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/connectors/conformance"
)

func TestParseType(t *testing.T) {
	tests := map[string]struct {
		in    string
		arrow string
		back  string // String() when it differs from in
	}{
		"bigint":       {in: "bigint", arrow: "int64"},
		"decimal":      {in: "decimal(12,2)", arrow: "decimal(12, 2)"},
		"varchar":      {in: "varchar", arrow: "utf8"},
		"varchar n":    {in: "varchar(10)", arrow: "utf8"},
		"char":         {in: "char(3)", arrow: "utf8"},
		"ts default":   {in: "timestamp", arrow: "timestamp[us]"},
		"ts3":          {in: "timestamp(3)", arrow: "timestamp[us]"},
		"ts9":          {in: "timestamp(9)", arrow: "timestamp[ns]"},
		"tstz":         {in: "timestamp(3) with time zone", arrow: "timestamp[us, tz=UTC]"},
		"ts without":   {in: "timestamp(6) without time zone", arrow: "timestamp[us]", back: "timestamp(6)"},
		"time":         {in: "time(3)", arrow: "time64[us]"},
		"timetz":       {in: "time(3) with time zone", arrow: "utf8"},
		"double prec":  {in: "double precision", arrow: "float64", back: "double"},
		"interval":     {in: "interval day to second", arrow: "utf8"},
		"array":        {in: "array(integer)", arrow: "list<item: int32, nullable>"},
		"map":          {in: "map(varchar, bigint)", arrow: "map<utf8, int64, items_nullable>"},
		"row":          {in: "row(a integer, b varchar)", arrow: "struct<a: int32 nullable, b: utf8 nullable>", back: `row("a" integer, "b" varchar)`},
		"row quoted":   {in: `row("A b" integer, "x""y" array(double))`, arrow: `struct<A b: int32 nullable, x"y: list<item: float64, nullable> nullable>`},
		"row anon":     {in: "row(integer, varchar)", arrow: "struct<field0: int32 nullable, field1: utf8 nullable>"},
		"row tz field": {in: "row(ts timestamp(3) with time zone, d double)", arrow: "struct<ts: timestamp[us, tz=UTC] nullable, d: float64 nullable>", back: `row("ts" timestamp(3) with time zone, "d" double)`},
		"row of row":   {in: "row(a row(b array(map(varchar, row(c date)))))", arrow: "struct<a: struct<b: list<item: map<utf8, struct<c: date32 nullable>, items_nullable>, nullable> nullable> nullable>", back: `row("a" row("b" array(map(varchar, row("c" date)))))`},
		"presto row":   {in: "row(a integer,b varchar)", arrow: "struct<a: int32 nullable, b: utf8 nullable>", back: `row("a" integer, "b" varchar)`},
		"upper":        {in: "ARRAY(BIGINT)", arrow: "list<item: int64, nullable>", back: "array(bigint)"},
		"uuid":         {in: "uuid", arrow: "utf8"},
		"hll":          {in: "HyperLogLog", arrow: "binary", back: "hyperloglog"},
		"varbinary":    {in: "varbinary", arrow: "binary"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ty, err := parseType(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := arrowType(ty).String(); got != tc.arrow {
				t.Errorf("arrow type %s, want %s", got, tc.arrow)
			}
			back := tc.back
			if back == "" {
				back = tc.in
			}
			if got := ty.String(); got != back {
				t.Errorf("String() = %s, want %s", got, back)
			}
		})
	}
	for _, bad := range []string{"", "array(", "map(varchar)", "row()", "decimal(a)", "timestamp(3) with zone", `row("a integer)`, "array(bigint))"} {
		if _, err := parseType(bad); err == nil {
			t.Errorf("parseType(%q) succeeded", bad)
		}
	}
}

func FuzzParseType(f *testing.F) {
	for _, s := range []string{"bigint", "row(a integer, \"b\" array(map(varchar, row(c date))))", "timestamp(3) with time zone", "decimal(38,10)", "interval year to month"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ty, err := parseType(s)
		if err != nil {
			return
		}
		_ = arrowType(ty)
		again, err := parseType(ty.String())
		if err != nil {
			t.Fatalf("%q parsed, but its rendering %q does not: %v", s, ty.String(), err)
		}
		if again.String() != ty.String() {
			t.Fatalf("round trip %q -> %q -> %q", s, ty.String(), again.String())
		}
	})
}

// TestAppendValue feeds values in both shapes the driver produces (top
// level converted, nested raw JSON) and checks the canonical values.
func TestAppendValue(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+1800)
	tests := map[string]struct {
		typ  string
		in   any
		want any
	}{
		"int":         {"integer", int64(7), int64(7)},
		"int json":    {"bigint", json.Number("9007199254740993"), int64(9007199254740993)},
		"tinyint":     {"tinyint", json.Number("-128"), int64(-128)},
		"real":        {"real", float64(1.5), 1.5},
		"double nan":  {"double", "NaN", math.NaN()},
		"double inf":  {"double", "-Infinity", math.Inf(-1)},
		"decimal":     {"decimal(10,2)", "-12.50", "-12.50"},
		"decimal 38":  {"decimal(38,9)", "12345678901234567890.123456789", "12345678901234567890.123456789"},
		"bool":        {"boolean", true, true},
		"varchar":     {"varchar", "héllo", "héllo"},
		"binary":      {"varbinary", []byte{0xca, 0xfe}, []byte{0xca, 0xfe}},
		"binary b64":  {"varbinary", "yv4=", []byte{0xca, 0xfe}},
		"date":        {"date", time.Date(2024, 2, 29, 0, 0, 0, 0, ist), "2024-02-29"},
		"date str":    {"date", "1969-12-31", "1969-12-31"},
		"ts wall":     {"timestamp(6)", time.Date(2024, 2, 29, 12, 34, 56, 123456000, ist), "2024-02-29 12:34:56.123456"},
		"ts str":      {"timestamp(3)", "2024-02-29 12:34:56.123", "2024-02-29 12:34:56.123"},
		"ts 12 str":   {"timestamp(12)", "2024-02-29 12:34:56.123456789012", "2024-02-29 12:34:56.123456"},
		"tstz":        {"timestamp(3) with time zone", time.Date(2024, 2, 29, 12, 34, 56, 0, ist), "2024-02-29 07:04:56Z"},
		"tstz str":    {"timestamp(3) with time zone", "2024-02-29 12:34:56.000 +05:30", "2024-02-29 07:04:56Z"},
		"tstz named":  {"timestamp(3) with time zone", "2024-07-01 12:00:00.000 America/New_York", "2024-07-01 16:00:00Z"},
		"tstz utc":    {"timestamp(3) with time zone", "2024-07-01 12:00:00.000 UTC", "2024-07-01 12:00:00Z"},
		"time":        {"time(3)", "12:34:56.789", "12:34:56.789"},
		"uuid":        {"uuid", "12151fd2-7586-11e9-8f9e-2a86e4085a59", "12151fd2-7586-11e9-8f9e-2a86e4085a59"},
		"array":       {"array(integer)", []any{json.Number("1"), nil, json.Number("3")}, []any{int64(1), nil, int64(3)}},
		"array dates": {"array(date)", []any{"2024-01-01"}, []any{"2024-01-01"}},
		"map":         {"map(integer, varchar)", map[string]any{"2": "b", "1": "a"}, `[{"key":1,"value":"a"},{"key":2,"value":"b"}]`},
		"row raw":     {"row(a integer, b varchar)", []any{json.Number("1"), "x"}, `{"a":1,"b":"x"}`},
		"null":        {"bigint", nil, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			ty, err := parseType(tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			b := array.NewBuilder(mem, arrowType(ty))
			defer b.Release()
			if err := appendValue(b, ty, tc.in); err != nil {
				t.Fatal(err)
			}
			a := b.NewArray()
			defer a.Release()
			got := conformance.Value(a, 0)
			if tc.typ == "time(3)" {
				got = a.(*array.Time64).Value(0).ToTime(arrow.Microsecond).Format("15:04:05.999999")
			}
			if s, ok := tc.want.(string); ok && strings.HasPrefix(s, "[{") || strings.HasPrefix(tc.typ, "row") {
				got = a.ValueStr(0)
			}
			if !sameCanonical(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func sameCanonical(a, b any) bool {
	if fa, ok := a.(float64); ok {
		if fb, ok := b.(float64); ok {
			return fa == fb || math.IsNaN(fa) && math.IsNaN(fb)
		}
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestAppendValueErrors(t *testing.T) {
	for typ, v := range map[string]any{
		"tinyint":       json.Number("300"),
		"decimal(4,2)":  "123.45",
		"date":          "not a date",
		"varbinary":     "%%%",
		"array(bigint)": "x",
		"boolean":       int64(1),
	} {
		ty, _ := parseType(typ)
		b := array.NewBuilder(memory.DefaultAllocator, arrowType(ty))
		if err := appendValue(b, ty, v); err == nil {
			t.Errorf("%s: %v accepted", typ, v)
		}
		b.Release()
	}
}
