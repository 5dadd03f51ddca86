package partition

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

func parquetFile(name string, groups ...int64) File {
	f := File{Path: name}
	for _, g := range groups {
		f.RowGroups = append(f.RowGroups, RowGroup{Rows: g, Bytes: g * 10})
		f.Rows += g
		f.Size += g * 10
	}
	return f
}

func TestPlanFiles(t *testing.T) {
	tests := map[string]struct {
		files []File
		opts  Options
		want  []string // locators
	}{
		"small files packed": {
			files: []File{parquetFile("a", 100), parquetFile("b", 100), parquetFile("c", 100)},
			opts:  Options{TargetRows: 200},
			want:  []string{"a, b", "c"},
		},
		"large file cut at row groups": {
			files: []File{parquetFile("big", 100, 100, 100, 100)},
			opts:  Options{TargetRows: 200},
			want:  []string{"big[rows 0:200)", "big[rows 200:400)"},
		},
		"files strategy never cuts a file": {
			files: []File{parquetFile("big", 100, 100, 100, 100)},
			opts:  Options{By: Files, TargetRows: 200},
			want:  []string{"big"},
		},
		"none is one split": {
			files: []File{parquetFile("a", 100), parquetFile("b", 100)},
			opts:  Options{By: None, TargetRows: 1},
			want:  []string{"a, b"},
		},
		"max partitions caps": {
			files: []File{parquetFile("big", 10, 10, 10, 10, 10, 10, 10, 10)},
			opts:  Options{TargetRows: 10, MaxPartitions: 3},
			want:  []string{"big[rows 0:30)", "big[rows 30:60)", "big[rows 60:80)"},
		},
		"sorted by path": {
			files: []File{parquetFile("z", 5), parquetFile("a", 5)},
			opts:  Options{TargetRows: 5},
			want:  []string{"a", "z"},
		},
		"csv by files": {
			files: []File{{Path: "x.csv", Rows: 1000, Size: 10000}, {Path: "y.csv", Rows: 1000, Size: 10000}},
			opts:  Options{TargetBytes: 10000},
			want:  []string{"x.csv", "y.csv"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := PlanFiles("src", tc.files, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var locs []string
			for i, s := range got {
				locs = append(locs, s.Locator)
				if want := fmt.Sprintf("src-%05d", i); s.ID != want {
					t.Errorf("split %d id %q, want %q", i, s.ID, want)
				}
			}
			if !reflect.DeepEqual(locs, tc.want) {
				t.Fatalf("got %q, want %q", locs, tc.want)
			}
		})
	}
}

func TestPlanFilesErrors(t *testing.T) {
	if _, err := PlanFiles("s", nil, Options{}); err != ErrNoFiles {
		t.Fatalf("got %v", err)
	}
	if _, err := PlanFiles("s", []File{parquetFile("a", 1)}, Options{TargetRows: -1}); err == nil {
		t.Fatal("negative target accepted")
	}
	if _, err := ParseStrategy("bogus"); err == nil {
		t.Fatal("bogus strategy accepted")
	}
}

func TestDefaultTargetKeepsSlotsBusy(t *testing.T) {
	var files []File
	for i := range 8 {
		files = append(files, parquetFile(fmt.Sprintf("f%d", i), 250_000, 250_000, 250_000, 250_000, 250_000))
	}
	got, err := PlanFiles("e", files, Options{Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 4 {
		t.Fatalf("%d splits for 10M rows on 2 slots; want at least 4", len(got))
	}
}

// TestPlanProperties: every row of every file is covered exactly once, row
// ranges sit on row-group boundaries, the cap holds, and planning is
// deterministic and JSON round-trips.
func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 12).Draw(t, "files")
		var files []File
		for i := range n {
			groups := rapid.SliceOfN(rapid.Int64Range(0, 1000), 0, 10).Draw(t, "groups")
			files = append(files, parquetFile(fmt.Sprintf("f%02d", i), groups...))
		}
		o := Options{
			By:            rapid.SampledFrom([]Strategy{Auto, Files, RowGroups, None}).Draw(t, "by"),
			TargetRows:    rapid.Int64Range(0, 3000).Draw(t, "target"),
			MaxPartitions: rapid.IntRange(0, 20).Draw(t, "max"),
			Slots:         rapid.IntRange(1, 8).Draw(t, "slots"),
		}
		splits, err := PlanFiles("s", files, o)
		if err != nil {
			t.Fatal(err)
		}
		if o.MaxPartitions > 0 && len(splits) > o.MaxPartitions {
			t.Fatalf("%d splits > max %d", len(splits), o.MaxPartitions)
		}
		covered := map[string]int64{}
		whole := map[string]int{}
		for _, s := range splits {
			for _, p := range s.Pieces {
				if p.Whole() {
					whole[p.Path]++
					continue
				}
				if p.RowStart != covered[p.Path] {
					t.Fatalf("gap or overlap in %s at %d", p.Path, p.RowStart)
				}
				covered[p.Path] = p.RowEnd
			}
		}
		for _, f := range files {
			switch {
			case whole[f.Path] == 1 && covered[f.Path] == 0:
			case whole[f.Path] == 0 && covered[f.Path] == f.Rows:
			default:
				t.Fatalf("file %s covered whole %d times and to row %d of %d", f.Path, whole[f.Path], covered[f.Path], f.Rows)
			}
		}
		again, _ := PlanFiles("s", files, o)
		b1, _ := json.Marshal(splits)
		b2, _ := json.Marshal(again)
		if string(b1) != string(b2) {
			t.Fatal("planning is not deterministic")
		}
		var back []Split
		if err := json.Unmarshal(b1, &back); err != nil || !reflect.DeepEqual(back, splits) {
			t.Fatalf("json round trip: %v", err)
		}
	})
}
