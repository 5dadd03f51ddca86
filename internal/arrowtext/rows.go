package arrowtext

import (
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"
)

// Rows drains rr and returns every row with each value rendered as text
// (arrow's ValueStr), NULL as nil. The values are copies: they outlive the
// batches, which the reader releases on its next Next. rr stays the
// caller's to release. Meant for results of a few rows.
func Rows(rr array.RecordReader) ([][]*string, error) {
	var out [][]*string
	for rr.Next() {
		b := rr.RecordBatch()
		for i := range int(b.NumRows()) {
			row := make([]*string, b.NumCols())
			for j, col := range b.Columns() {
				if col.IsValid(i) {
					v := strings.Clone(col.ValueStr(i))
					row[j] = &v
				}
			}
			out = append(out, row)
		}
	}
	return out, rr.Err()
}
