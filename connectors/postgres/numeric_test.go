package postgres

import (
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/apache/arrow-go/v18/arrow"
)

// encodeNumeric writes PostgreSQL's binary numeric.
func encodeNumeric(weight int16, sign uint16, dscale uint16, digits ...uint16) []byte {
	v := make([]byte, 8+2*len(digits))
	binary.BigEndian.PutUint16(v[0:], uint16(len(digits)))
	binary.BigEndian.PutUint16(v[2:], uint16(weight))
	binary.BigEndian.PutUint16(v[4:], sign)
	binary.BigEndian.PutUint16(v[6:], dscale)
	for i, d := range digits {
		binary.BigEndian.PutUint16(v[8+2*i:], d)
	}
	return v
}

func decodeNumeric(t *testing.T, p, s int32, v []byte) (string, error) {
	t.Helper()
	b := array.NewDecimal128Builder(memory.DefaultAllocator, &arrow.Decimal128Type{Precision: p, Scale: s})
	defer b.Release()
	if err := numericDecoder(p, s)(b, v); err != nil {
		return "", err
	}
	a := b.NewDecimal128Array()
	defer a.Release()
	return a.ValueStr(0), nil
}

func TestNumericDecoder(t *testing.T) {
	tests := []struct {
		name string
		p, s int32
		v    []byte
		want string // "" for an error
	}{
		{"123.45", 12, 2, encodeNumeric(0, 0, 2, 123, 4500), "123.45"},
		{"-99999.999", 12, 3, encodeNumeric(1, 0x4000, 3, 9, 9999, 9990), "-99999.999"},
		{"round half up", 12, 1, encodeNumeric(0, 0, 2, 1, 2500), "1.3"},
		{"round half away from zero", 12, 1, encodeNumeric(0, 0x4000, 2, 1, 2500), "-1.3"},
		{"round down", 12, 1, encodeNumeric(0, 0, 4, 1, 2499), "1.2"},
		{"zero", 12, 2, encodeNumeric(0, 0, 0), "0"},
		{"tiny rounds to zero", 12, 2, encodeNumeric(-30, 0, 120, 5), "0"},
		{"1e12 at p 18", 18, 2, encodeNumeric(3, 0, 0, 1), "1000000000000"},
		{"1e16 needs p 19", 18, 2, encodeNumeric(4, 0, 0, 1), ""},
		{"1e8 at p 12", 12, 2, encodeNumeric(2, 0, 0, 1), "100000000"},
		{"overflow p 5", 5, 2, encodeNumeric(1, 0, 0, 1), ""},
		{"p 38 big", 38, 0, encodeNumeric(8, 0, 0, 1), "1000000000000000000000000000000000000"[:33]},
		{"NaN", 12, 2, encodeNumeric(0, 0xC000, 0), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeNumeric(t, tc.p, tc.s, tc.v)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("got %s, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// FuzzNumericSmall: the allocation-free path agrees with math/big on every
// value it accepts, and accepts every small value.
func FuzzNumericSmall(f *testing.F) {
	f.Add(int16(0), false, uint8(12), uint8(2), []byte{0, 123, 17, 148})
	f.Add(int16(-3), true, uint8(18), uint8(0), []byte{39, 15, 0, 1, 0, 2})
	f.Add(int16(4), false, uint8(18), uint8(6), []byte{0, 1})
	f.Fuzz(func(t *testing.T, weight int16, neg bool, p, s uint8, raw []byte) {
		if p == 0 || p > 38 || s > p || len(raw) > 40 {
			return
		}
		var digits []uint16
		for i := 0; i+1 < len(raw); i += 2 {
			digits = append(digits, binary.BigEndian.Uint16(raw[i:])%10000)
		}
		sign := uint16(0)
		if neg {
			sign = 0x4000
		}
		v := encodeNumeric(weight, sign, 0, digits...)
		limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(p)), nil)
		want, werr := numericBig(v, int32(p), int32(s), limit)
		got, ok := numericSmall(v, int32(p), int32(s))
		if ok {
			if werr != nil {
				t.Fatalf("small accepted %d, big refused: %v", got, werr)
			}
			if decimal128.FromI64(got) != want {
				t.Fatalf("small %d, big %s", got, want.BigInt())
			}
		} else if werr == nil && p <= 18 && len(digits) <= 4 && weight >= -4 && weight <= 4 {
			t.Fatalf("small refused a value big decoded: %s (p %d s %d)", want.BigInt(), p, s)
		}
	})
}
