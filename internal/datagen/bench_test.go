package datagen

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkGenerate measures end-to-end generation (default options apart
// from Rows) and reports rows/s. Select one size with
// -bench 'Generate/rows=1M'.
func BenchmarkGenerate(b *testing.B) {
	sizes := []struct {
		name string
		rows int64
	}{
		{"1M", 1_000_000},
		{"10M", 10_000_000},
	}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("rows=%s", size.name), func(b *testing.B) {
			dir := b.TempDir()
			b.ReportAllocs()
			var res Result
			for b.Loop() {
				var err error
				res, err = Generate(context.Background(), Options{Dir: dir, Rows: size.rows})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(res.Bytes)
			b.ReportMetric(float64(size.rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(res.Bytes), "file-bytes")
		})
	}
}
