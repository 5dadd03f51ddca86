package file

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pqfile "github.com/apache/arrow-go/v18/parquet/file"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/liminal-data/liminal/connectors"
)

// writeParts writes Parquet parts with DuckDB: every type family, NULLs,
// dictionary-encoded strings, several row groups per part, an empty part.
func writeParts(t *testing.T, dir string, compression string) []string {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var parts []string
	for i, r := range [][2]int{{0, 5000}, {5000, 5000}, {5000, 12000}, {12000, 12001}} {
		p := filepath.Join(dir, fmt.Sprintf("part-%d.parquet", i))
		q := fmt.Sprintf(`COPY (SELECT i AS id, CASE WHEN i %% 7 = 0 THEN NULL ELSE i * 1.5 END AS d,
			['a','bb','ccc'][1 + i %% 3] AS s, i::DECIMAL(18,3) AS dec, DATE '2024-01-01' + (i %% 30)::INTEGER AS dt,
			[i, i + 1] AS l, {'k': i %% 5, 'v': 'x' || i} AS st, i %% 2 = 0 AS b
			FROM range(%d, %d) t(i)) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 2048, COMPRESSION %s)`, r[0], r[1], p, compression)
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	return parts
}

// TestJoinParquet: the joined file holds the parts' rows in order, byte
// for byte the same values, readable by DuckDB and by arrow-go's reader,
// for every compression.
func TestJoinParquet(t *testing.T) {
	for _, comp := range []string{"snappy", "zstd", "uncompressed", "gzip"} {
		t.Run(comp, func(t *testing.T) {
			dir := t.TempDir()
			parts := writeParts(t, dir, comp)
			out := filepath.Join(dir, "joined.parquet")
			rows, err := joinParquet(out, parts)
			if err != nil {
				t.Fatal(err)
			}
			if rows != 12001 {
				t.Fatalf("%d rows, want 12001", rows)
			}
			db, err := sql.Open("duckdb", "")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var diff, n int64
			q := fmt.Sprintf(`WITH a AS (SELECT row_number() OVER () AS rn, * FROM read_parquet('%s')),
				b AS (SELECT row_number() OVER () AS rn, * FROM read_parquet(['%s']))
				SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM b))`,
				out, strings.Join(parts, "','"))
			if err := db.QueryRow(q).Scan(&n, &diff); err != nil {
				t.Fatal(err)
			}
			if n != 12001 || diff != 0 {
				t.Fatalf("joined file: %d rows, %d differ from the parts in order", n, diff)
			}
			r, err := pqfile.OpenParquetFile(out, false)
			if err != nil {
				t.Fatalf("arrow-go cannot open the joined file: %v", err)
			}
			defer r.Close()
			if r.NumRows() != 12001 || r.NumRowGroups() < 6 {
				t.Fatalf("arrow-go reads %d rows in %d row groups", r.NumRows(), r.NumRowGroups())
			}
			for g := range r.NumRowGroups() {
				rg := r.RowGroup(g)
				for c := range rg.NumColumns() {
					if _, err := rg.Column(c); err != nil {
						t.Fatalf("row group %d column %d: %v", g, c, err)
					}
				}
			}
		})
	}
}

// TestJoinParquetRefuses: parts with different schemas, a file that is not
// Parquet and a footer claiming more bytes than the file has are refused.
func TestJoinParquetRefuses(t *testing.T) {
	dir := t.TempDir()
	parts := writeParts(t, dir, "snappy")
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other := filepath.Join(dir, "other.parquet")
	if _, err := db.Exec("COPY (SELECT 1 AS id) TO '" + other + "' (FORMAT parquet)"); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.parquet")
	if err := os.WriteFile(junk, []byte("id\n1\n2\n3\nnot parquet at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	lying := filepath.Join(dir, "lying.parquet")
	if err := os.WriteFile(lying, []byte("PAR1xxxxxxxx\xff\xff\xff\x7fPAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]string{
		"schema": {parts[0], other}, "not parquet": {parts[0], junk}, "footer size": {lying}, "none": nil,
	} {
		if _, err := joinParquet(filepath.Join(dir, "out-"+strings.ReplaceAll(name, " ", "_")+".parquet"), in); err == nil {
			t.Errorf("%s: joined", name)
		}
	}
}

// TestSingleParquetJoinsParts: a run into one .parquet file commits the
// partitions' parts joined, in split order.
func TestSingleParquetJoinsParts(t *testing.T) {
	dir := t.TempDir()
	parts := writeParts(t, dir, "zstd")
	target := filepath.Join(dir, "out.parquet")
	s, err := OpenSink(context.Background(), connectors.SinkConfig{Name: "out", URI: target, Mode: connectors.ModeError})
	if err != nil {
		t.Fatal(err)
	}
	run := connectors.Run{ID: "r1"}
	if err := s.Prepare(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	rows := []int64{5000, 0, 7000, 1}
	var staged []connectors.Manifest
	for i, p := range parts {
		staged = append(staged, connectors.Manifest{SplitID: fmt.Sprintf("s%d", i), Rows: rows[i],
			Files: []connectors.StagedFile{{Staged: p, Final: filepath.Base(p), Rows: rows[i]}}})
	}
	out, err := s.Commit(context.Background(), run, staged)
	if err != nil {
		t.Fatal(err)
	}
	if out.Rows != 12001 || len(out.Files) != 1 || out.Files[0] != target {
		t.Fatalf("committed %+v", out)
	}
	r, err := pqfile.OpenParquetFile(target, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRows() != 12001 {
		t.Fatalf("%d rows", r.NumRows())
	}
}

// FuzzParquetFooter: any bytes as a file end in an error or a footer,
// never a crash or an allocation beyond the input.
func FuzzParquetFooter(f *testing.F) {
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Add([]byte("PAR1\x15\x00\x15\x00\x05\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := parquetFooter(strings.NewReader(string(b)), int64(len(b)))
		if err == nil {
			for i := range md.RowGroups {
				_, _, _ = chunkRange(&md.RowGroups[i])
			}
		}
	})
}
