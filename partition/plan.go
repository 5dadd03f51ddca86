package partition

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
)

// Strategy names how an input is split.
type Strategy string

// The splitting strategies.
const (
	Auto      Strategy = "auto"       // row groups for large Parquet files, files otherwise
	Files     Strategy = "files"      // whole files, packed toward the target
	RowGroups Strategy = "row_groups" // like Auto; never packs across a large file
	None      Strategy = "none"       // one split for the whole input
)

// ParseStrategy accepts "" as Auto.
func ParseStrategy(s string) (Strategy, error) {
	switch Strategy(s) {
	case "", Auto:
		return Auto, nil
	case Files, RowGroups, None:
		return Strategy(s), nil
	}
	return "", fmt.Errorf("unknown partition strategy %q (want auto, files, row_groups or none)", s)
}

// Options size the splits. Zero values pick defaults that keep Slots busy.
type Options struct {
	By            Strategy
	TargetRows    int64 // rows per split; wins over TargetBytes
	TargetBytes   int64 // bytes per split when TargetRows is 0
	MaxPartitions int   // upper bound on the number of splits; 0 = none
	Slots         int   // worker slots to keep busy; 0 = 1
}

// Default bounds for the automatic target size.
const (
	MinAutoRows = 1_000_000
	MaxAutoRows = 8_000_000
)

// File describes one input file. RowGroups is nil for formats without
// row groups (CSV); then Rows may be an estimate.
type File struct {
	Path      string
	Size      int64
	Rows      int64
	RowGroups []RowGroup
}

// RowGroup is the size of one Parquet row group.
type RowGroup struct {
	Rows, Bytes int64
}

// ErrNoFiles is returned when there is nothing to split.
var ErrNoFiles = errors.New("no input files")

// PlanFiles splits files of source into deterministic splits. Files are
// taken in path order; IDs are source-00000, source-00001, ...
func PlanFiles(source string, files []File, o Options) ([]Split, error) {
	if len(files) == 0 {
		return nil, ErrNoFiles
	}
	if o.By == "" {
		o.By = Auto
	}
	if o.TargetRows < 0 || o.TargetBytes < 0 || o.MaxPartitions < 0 {
		return nil, fmt.Errorf("negative partition option: %+v", o)
	}
	files = append([]File(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })

	var totalRows, totalBytes int64
	for _, f := range files {
		totalRows += f.Rows
		totalBytes += f.Size
	}
	var groups [][]Piece
	if o.By == None {
		groups = [][]Piece{wholeFiles(files)}
	} else {
		target := targetRows(o, totalRows, totalBytes)
		for {
			groups = pack(files, target, o.By != Files)
			if o.MaxPartitions == 0 || len(groups) <= o.MaxPartitions {
				break
			}
			// Grow the target until the cap holds; deterministic and terminates
			// because one group per file (or one in all) is reached eventually.
			target += target/8 + 1
		}
	}
	byPath := make(map[string]File, len(files))
	for _, f := range files {
		byPath[f.Path] = f
	}
	splits := make([]Split, len(groups))
	for i, g := range groups {
		s := Split{ID: fmt.Sprintf("%s-%05d", source, i), Source: source, Pieces: g}
		for _, p := range g {
			r, b := pieceSize(byPath[p.Path], p)
			s.Rows += r
			s.Bytes += b
		}
		s.Locator = locator(g, filepath.Base)
		splits[i] = s
	}
	return splits, nil
}

func wholeFiles(files []File) []Piece {
	ps := make([]Piece, len(files))
	for i, f := range files {
		ps[i] = Piece{Path: f.Path}
	}
	return ps
}

// targetRows picks rows per split: explicit rows, bytes converted with the
// input's average row width, or enough splits to keep every slot busy twice
// over (so one slow split does not idle the others), within bounds.
func targetRows(o Options, totalRows, totalBytes int64) int64 {
	if o.TargetRows > 0 {
		return o.TargetRows
	}
	if o.TargetBytes > 0 && totalBytes > 0 && totalRows > 0 {
		perRow := float64(totalBytes) / float64(totalRows)
		return max(1, int64(float64(o.TargetBytes)/perRow))
	}
	slots := int64(max(1, o.Slots))
	t := (totalRows + 2*slots - 1) / (2 * slots)
	return min(max(t, MinAutoRows), MaxAutoRows)
}

// pack cuts files into groups of about target rows. Large Parquet files are
// cut at row-group boundaries when splitFiles is set; small files are packed
// together. A group never mixes a row range with other pieces.
func pack(files []File, target int64, splitFiles bool) [][]Piece {
	var groups [][]Piece
	var cur []Piece
	var curRows int64
	flush := func() {
		if len(cur) > 0 {
			groups = append(groups, cur)
			cur, curRows = nil, 0
		}
	}
	for _, f := range files {
		if splitFiles && len(f.RowGroups) > 1 && f.Rows >= target*3/2 {
			flush()
			for _, r := range rowGroupRanges(f, target) {
				groups = append(groups, []Piece{r})
			}
			continue
		}
		if curRows > 0 && curRows+f.Rows > target && target-curRows < curRows+f.Rows-target {
			flush()
		}
		cur = append(cur, Piece{Path: f.Path})
		curRows += f.Rows
		if curRows >= target {
			flush()
		}
	}
	flush()
	return groups
}

// rowGroupRanges cuts one file into consecutive row-group ranges of about
// target rows each; a range closes when adding the next group would
// overshoot the target by more than it now falls short.
func rowGroupRanges(f File, target int64) []Piece {
	var out []Piece
	var start, rows int64
	for i, g := range f.RowGroups {
		if rows > 0 && rows+g.Rows > target && target-rows < rows+g.Rows-target {
			out = append(out, Piece{Path: f.Path, RowStart: start, RowEnd: start + rows})
			start += rows
			rows = 0
		}
		rows += g.Rows
		if i == len(f.RowGroups)-1 {
			out = append(out, Piece{Path: f.Path, RowStart: start, RowEnd: start + rows})
		}
	}
	return out
}

func pieceSize(f File, p Piece) (rows, bytes int64) {
	if p.Whole() {
		return f.Rows, f.Size
	}
	rows = p.RowEnd - p.RowStart
	if f.Rows > 0 {
		bytes = int64(float64(f.Size) * float64(rows) / float64(f.Rows))
	}
	return rows, bytes
}
