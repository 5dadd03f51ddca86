package partition

import (
	"fmt"
	"strings"
)

// Split is one partition of one source: a plain value that can be logged,
// retried and sent to another process as JSON.
type Split struct {
	// ID is deterministic for a given input and options, e.g. "events-00003".
	ID string `json:"id"`
	// Source is the name of the source the split belongs to.
	Source string `json:"source"`
	// Locator says where the data is, for people: files and row ranges.
	Locator string `json:"locator"`
	// Rows and Bytes are estimates (exact for Parquet row counts).
	Rows  int64 `json:"rows"`
	Bytes int64 `json:"bytes"`
	// Pieces are the file pieces a file-based split reads, in order.
	Pieces []Piece `json:"pieces,omitempty"`
	// Attrs carry connector-specific parameters (key ranges, queries).
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Piece is a file, or a half-open range [RowStart, RowEnd) of its rows when
// RowEnd > 0. Row ranges always fall on row-group boundaries.
type Piece struct {
	Path     string `json:"path"`
	RowStart int64  `json:"row_start,omitempty"`
	RowEnd   int64  `json:"row_end,omitempty"`
}

// Whole reports whether the piece covers the whole file.
func (p Piece) Whole() bool { return p.RowEnd <= 0 }

// String renders the piece as path or path[start:end).
func (p Piece) String() string {
	if p.Whole() {
		return p.Path
	}
	return fmt.Sprintf("%s[rows %d:%d)", p.Path, p.RowStart, p.RowEnd)
}

func locator(pieces []Piece, base func(string) string) string {
	const show = 3
	var b strings.Builder
	for i, p := range pieces {
		if i == show {
			fmt.Fprintf(&b, " (+%d more)", len(pieces)-show)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		q := p
		q.Path = base(p.Path)
		b.WriteString(q.String())
	}
	return b.String()
}
