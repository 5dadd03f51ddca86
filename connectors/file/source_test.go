package file

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
)

func writeParquet(t *testing.T, path, query string) {
	t.Helper()
	db, _ := sql.Open("duckdb", "")
	defer db.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("COPY (" + query + ") TO '" + path + "' (FORMAT parquet, ROW_GROUP_SIZE 2048)"); err != nil {
		t.Fatal(err)
	}
}

func open(uri, format string) (connectors.Source, error) {
	return OpenSource(context.Background(), connectors.SourceConfig{Name: "t", URI: uri, Format: format})
}

func TestSourceErrors(t *testing.T) {
	dir := t.TempDir()
	writeParquet(t, filepath.Join(dir, "good", "a.parquet"), "SELECT i AS x, 'a' AS s FROM range(10) r(i)")
	writeParquet(t, filepath.Join(dir, "mixed", "a.parquet"), "SELECT i AS x, 'a' AS s FROM range(10) r(i)")
	writeParquet(t, filepath.Join(dir, "mixed", "b.parquet"), "SELECT 'x' AS x, 'a' AS s FROM range(10) r(i)")
	writeParquet(t, filepath.Join(dir, "trunc", "a.parquet"), "SELECT i AS x FROM range(10000) r(i)")
	b, _ := os.ReadFile(filepath.Join(dir, "trunc", "a.parquet"))
	_ = os.WriteFile(filepath.Join(dir, "trunc", "a.parquet"), b[:len(b)/2], 0o644)
	_ = os.MkdirAll(filepath.Join(dir, "garbage"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "garbage", "a.parquet"), []byte("this is not parquet at all, just text"), 0o644)
	_ = os.MkdirAll(filepath.Join(dir, "empty"), 0o755)
	_ = os.MkdirAll(filepath.Join(dir, "csvhdr"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "csvhdr", "a.csv"), []byte("id,name\n1,a\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "csvhdr", "b.csv"), []byte("name,id\nb,2\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "noext"), []byte("x"), 0o644)

	tests := map[string]struct {
		uri, format string
		want        string
	}{
		"missing path":       {uri: filepath.Join(dir, "nope"), want: "no such file or directory"},
		"empty glob":         {uri: filepath.Join(dir, "good", "*.csv"), want: "no file matches"},
		"empty directory":    {uri: filepath.Join(dir, "empty"), want: "no .parquet or .csv files"},
		"schemas differ":     {uri: filepath.Join(dir, "mixed"), want: "schema of"},
		"truncated parquet":  {uri: filepath.Join(dir, "trunc"), want: "a.parquet"},
		"not parquet":        {uri: filepath.Join(dir, "garbage"), want: "a.parquet"},
		"csv headers differ": {uri: filepath.Join(dir, "csvhdr"), want: "header of"},
		"unknown format":     {uri: filepath.Join(dir, "good"), format: "xlsx", want: "unknown format"},
		"no extension":       {uri: filepath.Join(dir, "noext"), want: "cannot tell the format"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := open(tc.uri, tc.format)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if !errors.Is(err, connectors.ErrPermanent) {
				t.Fatalf("error %q is not permanent", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

// TestRowRangesCoverInput: the scans of all splits together read every row
// exactly once, at every target size.
func TestRowRangesCoverInput(t *testing.T) {
	dir := t.TempDir()
	writeParquet(t, filepath.Join(dir, "a.parquet"), "SELECT i AS x FROM range(0, 30000) r(i)")
	writeParquet(t, filepath.Join(dir, "b.parquet"), "SELECT i AS x FROM range(30000, 31000) r(i)")
	writeParquet(t, filepath.Join(dir, "c.parquet"), "SELECT i AS x FROM range(31000, 50000) r(i)")
	src, err := open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	db, _ := sql.Open("duckdb", "")
	defer db.Close()
	for _, target := range []int64{1, 2048, 5000, 13000, 100000} {
		splits, err := src.Splits(context.Background(), partition.Options{TargetRows: target})
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, sp := range splits {
			scan, err := src.(connectors.NativeSource).ScanSQL(&sp)
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, "SELECT x FROM "+scan)
		}
		var n, distinct, sum int64
		q := "SELECT count(*), count(DISTINCT x), sum(x) FROM (" + strings.Join(parts, " UNION ALL ") + ")"
		if err := db.QueryRow(q).Scan(&n, &distinct, &sum); err != nil {
			t.Fatal(err)
		}
		if n != 50000 || distinct != 50000 || sum != 49999*50000/2 {
			t.Fatalf("target %d (%d splits): %d rows, %d distinct, sum %d", target, len(splits), n, distinct, sum)
		}
	}
}

func TestSourceSchemaAndRead(t *testing.T) {
	dir := t.TempDir()
	writeParquet(t, filepath.Join(dir, "a.parquet"), "SELECT i AS x, 'v' || i AS s FROM range(5000) r(i)")
	src, err := open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := src.Schema(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sc.NumFields() != 2 || sc.Field(0).Name != "x" || sc.Field(1).Name != "s" {
		t.Fatalf("schema %v", sc)
	}
	splits, _ := src.Splits(context.Background(), partition.Options{TargetRows: 2048})
	var total int64
	for _, sp := range splits {
		r, err := src.(connectors.ArrowSource).Read(context.Background(), sp, []string{"x"})
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			b := r.RecordBatch()
			if b.NumCols() != 1 {
				t.Fatalf("projection: %d columns", b.NumCols())
			}
			total += b.NumRows()
		}
		r.Release()
	}
	if total != 5000 {
		t.Fatalf("read %d rows", total)
	}
}

func TestCSVSniffedOnceForAllFiles(t *testing.T) {
	dir := t.TempDir()
	// The first file decides the types, as in one DuckDB read_csv over all
	// files: "v" is DOUBLE everywhere, not BIGINT in b.csv.
	_ = os.WriteFile(filepath.Join(dir, "a.csv"), []byte("id,v\n1,1.5\n2,2.5\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "b.csv"), []byte("id,v\n3,3\n4,4\n"), 0o644)
	src, err := open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := src.Splits(context.Background(), partition.Options{TargetRows: 1})
	if len(sp) != 2 {
		t.Fatalf("%d splits", len(sp))
	}
	scan, _ := src.(connectors.NativeSource).ScanSQL(&sp[1])
	db, _ := sql.Open("duckdb", "")
	defer db.Close()
	var typ string
	if err := db.QueryRow("SELECT typeof(v) FROM " + scan + " LIMIT 1").Scan(&typ); err != nil {
		t.Fatal(err)
	}
	if typ != "DOUBLE" {
		t.Fatalf("v is %s in the second file's split", typ)
	}
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"data/*.parquet", "x", "[", "a/**/b", "~/x", "file:///tmp/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = localPath(s, "/base")
		_, _ = expand(filepath.Join(t.TempDir(), s), "")
	})
}
