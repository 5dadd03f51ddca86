package trino

import (
	"math"
	"reflect"
	"testing"
)

func TestBounds(t *testing.T) {
	texts := func(bs []bound) []string {
		out := []string{}
		for _, b := range bs {
			out = append(out, b.sql)
		}
		return out
	}
	tests := map[string]struct {
		k      rangeKind
		lo, hi any
		n      int
		want   []string
	}{
		"ints":        {rangeInt, int64(1), int64(100), 4, []string{"26", "51", "76"}},
		"few values":  {rangeInt, int64(1), int64(3), 10, []string{"2", "3"}},
		"one value":   {rangeInt, int64(5), int64(5), 4, []string{}},
		"full int64":  {rangeInt, int64(math.MinInt64), int64(math.MaxInt64), 2, []string{"0"}},
		"negative":    {rangeInt, int64(-10), int64(9), 2, []string{"0"}},
		"dates":       {rangeDate, int64(0), int64(10), 2, []string{"DATE '1970-01-06'"}},
		"timestamps":  {rangeTimestamp, int64(0), int64(2_000_000), 2, []string{"TIMESTAMP '1970-01-01 00:00:01.000000'"}},
		"timestamptz": {rangeTimestampTZ, int64(0), int64(2_000_000), 2, []string{"TIMESTAMP '1970-01-01 00:00:01.000000 UTC'"}},
		"floats":      {rangeFloat, 0.0, 1.0, 4, []string{"DOUBLE '0.25'", "DOUBLE '0.5'", "DOUBLE '0.75'"}},
		"float equal": {rangeFloat, 1.0, 1.0, 4, []string{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := texts(tc.k.bounds(tc.lo, tc.hi, tc.n))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRangeParse(t *testing.T) {
	tests := map[string]struct {
		k    rangeKind
		in   string
		want any
	}{
		"int":      {rangeInt, "42", int64(42)},
		"float":    {rangeFloat, "1.5", 1.5},
		"date":     {rangeDate, "1970-01-11", int64(10)},
		"ts":       {rangeTimestamp, "1970-01-01 00:00:01.5", int64(1_500_000)},
		"ts zoned": {rangeTimestampTZ, "1970-01-01 01:00:00 +01:00", int64(0)},
	}
	for name, tc := range tests {
		got, err := tc.k.parse(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != tc.want {
			t.Errorf("%s: got %v, want %v", name, got, tc.want)
		}
	}
	if _, err := rangeFloat.parse("NaN"); err == nil {
		t.Error("NaN bound accepted")
	}
	if _, err := kindOf(sqlType{Base: "varchar"}); err == nil {
		t.Error("varchar accepted as a range column")
	}
}
