package file

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
)

// The fixture under testdata/hive/events was written by pyspark
// (testdata/hive/generate.py): df.write.partitionBy("dt", "region"), with
// a NULL region (__HIVE_DEFAULT_PARTITION__) and one Spark URL-escapes.

func fixtureDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("testdata", "hive", "events"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func openHive(t *testing.T, dir string, opts map[string]string) *Source {
	t.Helper()
	src, err := OpenSource(context.Background(), connectors.SourceConfig{Name: "events", URI: dir, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return src.(*Source)
}

// rowsOf runs q in a fresh DuckDB with view events over scan; rows as text.
func rowsOf(t *testing.T, scan, q string) ([]string, error) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE VIEW events AS SELECT * FROM " + scan); err != nil {
		return nil, err
	}
	rows, err := db.Query(q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		v := make([]any, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rows.Scan(p...); err != nil {
			return nil, err
		}
		out = append(out, strings.TrimSpace(fmt.Sprintln(v...)))
	}
	return out, rows.Err()
}

func TestHivePartitionedFixture(t *testing.T) {
	dir := fixtureDir(t)
	src := openHive(t, dir, nil)
	sc, err := src.Schema(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range sc.Fields() {
		got = append(got, f.Name+" "+f.Type.String())
	}
	want := "id int32, name utf8, amount decimal(24, 2), ts timestamp[us], dt date32, region utf8"
	if strings.Join(got, ", ") != want {
		t.Fatalf("schema %s\nwant     %s", strings.Join(got, ", "), want)
	}
	if d := src.Describe(); !strings.Contains(d, "hive-partitioned by dt, region") {
		t.Fatalf("describe %q", d)
	}
	whole, err := src.ScanSQL(nil)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := rowsOf(t, whole, "SELECT coalesce(region, 'NULL'), count(*), count(DISTINCT dt), min(dt) FROM events GROUP BY 1 ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := "[IL 15 3 2024-01-01 00:00:00 +0000 UTC NULL 15 3 2024-01-01 00:00:00 +0000 UTC North/East=1 %x 15 3 2024-01-01 00:00:00 +0000 UTC US 15 3 2024-01-01 00:00:00 +0000 UTC]"
	if fmt.Sprint(counts) != wantCounts {
		t.Fatalf("per region %v\nwant %s", counts, wantCounts)
	}
	// The same rows as DuckDB's own hive_partitioning over the same files
	// (which keeps __HIVE_DEFAULT_PARTITION__ as text; we read it as NULL).
	const q = "SELECT id, name, amount, ts, dt, region FROM events ORDER BY id"
	mine, err := rowsOf(t, whole, q)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := rowsOf(t, "(SELECT * REPLACE (NULLIF(region, '"+HiveNull+"') AS region) FROM read_parquet('"+dir+"/*/*/*.parquet', hive_partitioning=true))", q)
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 60 || fmt.Sprint(mine) != fmt.Sprint(ref) {
		t.Fatalf("rows differ from read_parquet(hive_partitioning=true):\n%v\n%v", mine, ref)
	}
	// Every split reads as the whole; splits mix partitions.
	for name, o := range map[string]partition.Options{"none": {By: partition.None}, "target=10": {TargetRows: 10}, "target=25": {TargetRows: 25}, "files": {By: partition.Files, TargetRows: 1}, "max3": {TargetRows: 1, MaxPartitions: 3}} {
		splits, err := src.Splits(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		mixed := false
		for _, sp := range splits {
			scan, err := src.ScanSQL(&sp)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := rowsOf(t, scan, q)
			if err != nil {
				t.Fatalf("%s: split %s: %v", name, sp.ID, err)
			}
			all = append(all, rows...)
			dirs := map[string]bool{}
			for _, p := range sp.Pieces {
				dirs[filepath.Dir(p.Path)] = true
			}
			mixed = mixed || len(dirs) > 1
		}
		sort.Strings(all)
		sorted := append([]string(nil), ref...)
		sort.Strings(sorted)
		if fmt.Sprint(all) != fmt.Sprint(sorted) {
			t.Fatalf("%s: %d splits read %d rows, want %d", name, len(splits), len(all), len(ref))
		}
		if name == "target=25" && !mixed {
			t.Errorf("%s: no split holds files of two partitions", name)
		}
	}
}

// TestHivePruning proves that files of pruned partitions are never opened:
// with one partition's file corrupt, a query filtering that partition out
// succeeds on every split, and one that needs it fails.
func TestHivePruning(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	if err := os.CopyFS(dir, os.DirFS(fixtureDir(t))); err != nil {
		t.Fatal(err)
	}
	bad, _ := filepath.Glob(filepath.Join(dir, "dt=2024-01-03", "region=US", "*.parquet"))
	if len(bad) != 1 {
		t.Fatalf("fixture file for the corrupt partition: %v", bad)
	}
	if err := os.WriteFile(bad[0], []byte("not parquet at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := openHive(t, dir, nil) // planning opens the first file only
	tests := map[string]struct {
		where string
		rows  int
		fails bool
	}{
		"other day":            {where: "dt = DATE '2024-01-01'", rows: 20},
		"range":                {where: "dt < '2024-01-03'", rows: 40},
		"other region":         {where: "region <> 'US'", rows: 30}, // NULL regions fail the test too
		"null region that day": {where: "dt = DATE '2024-01-03' AND region IS NULL", rows: 5},
		"escaped value":        {where: "region = 'North/East=1 %x'", rows: 15},
		"the bad partition":    {where: "dt = DATE '2024-01-03' AND region = 'US'", fails: true},
		"no filter":            {where: "true", fails: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			splits, err := src.Splits(context.Background(), partition.Options{TargetRows: 20})
			if err != nil {
				t.Fatal(err)
			}
			n, failed := 0, false
			for _, sp := range splits {
				scan, err := src.ScanSQL(&sp)
				if err != nil {
					t.Fatal(err)
				}
				rows, err := rowsOf(t, scan, "SELECT id FROM events WHERE "+tc.where)
				if err != nil {
					if !strings.Contains(err.Error(), filepath.Base(bad[0])) {
						t.Fatalf("split %s: %v", sp.ID, err)
					}
					failed = true
					continue
				}
				n += len(rows)
			}
			if failed != tc.fails || (!tc.fails && n != tc.rows) {
				t.Fatalf("%d rows, failed %v; want %d rows, failed %v", n, failed, tc.rows, tc.fails)
			}
		})
	}
}

func TestHiveDetectAndTypes(t *testing.T) {
	mk := func(t *testing.T, rels ...string) string {
		root := filepath.Join(t.TempDir(), "t")
		for _, r := range rels {
			p := filepath.Join(root, r)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	paths := func(root string) []string {
		ps, err := expand(root, Parquet)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	tests := map[string]struct {
		rels []string
		opts map[string]string
		want string // "k TYPE, ..." or "plain" or an error substring prefixed by "!"
	}{
		"inferred": {rels: []string{"n=1/d=2024-01-01/s=x/a.parquet", "n=" + HiveNull + "/d=2024-02-30x/s=2/b.parquet", "n=-7/d=" + HiveNull + "/s=%2F/c.parquet"},
			want: "n BIGINT, d VARCHAR, s VARCHAR"},
		"dates":      {rels: []string{"d=2024-01-01/a.parquet", "d=2024-12-31/b.parquet", "d=" + HiveNull + "/c.parquet"}, want: "d DATE"},
		"all null":   {rels: []string{"k=" + HiveNull + "/a.parquet"}, want: "k VARCHAR"},
		"given":      {rels: []string{"dt=2024-01-01/c=1/a.parquet"}, opts: map[string]string{"partition_types": "dt=varchar, c=decimal(10,2)"}, want: "dt VARCHAR, c DECIMAL(10,2)"},
		"plain":      {rels: []string{"a.parquet", "dt=1/b.parquet"}, want: "plain"},
		"not forced": {rels: []string{"x/a.parquet"}, want: "plain"},
		"forced":     {rels: []string{"x/a.parquet"}, opts: map[string]string{"hive_partitioning": "true"}, want: "!not key=value"},
		"off":        {rels: []string{"dt=1/a.parquet"}, opts: map[string]string{"hive_partitioning": "false"}, want: "plain"},
		"mixed keys": {rels: []string{"dt=1/a.parquet", "dx=1/b.parquet"}, want: "!differ"},
		"bad type":   {rels: []string{"dt=1/a.parquet"}, opts: map[string]string{"partition_types": "dt=int; drop"}, want: "!not key=type"},
		"bad key":    {rels: []string{"dt=1/a.parquet"}, opts: map[string]string{"partition_types": "day=date"}, want: "!not a partition key"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := mk(t, tc.rels...)
			h, err := detectHive(root, paths(root), tc.opts)
			if strings.HasPrefix(tc.want, "!") {
				if err == nil || !strings.Contains(err.Error(), tc.want[1:]) {
					t.Fatalf("err %v, want %q", err, tc.want[1:])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := "plain"
			if h != nil {
				var parts []string
				for _, k := range h.keys {
					parts = append(parts, k+" "+h.types[k])
				}
				got = strings.Join(parts, ", ")
			}
			if got != tc.want {
				t.Fatalf("%s, want %s", got, tc.want)
			}
		})
	}
}

// TestHiveTypedFromSpec reads the fixture with partition types given.
func TestHiveTypedFromSpec(t *testing.T) {
	src := openHive(t, fixtureDir(t), map[string]string{"partition_types": "dt=varchar"})
	scan, _ := src.ScanSQL(nil)
	rows, err := rowsOf(t, scan, "SELECT DISTINCT typeof(dt), dt FROM events ORDER BY dt")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rows) != "[VARCHAR 2024-01-01 VARCHAR 2024-01-02 VARCHAR 2024-01-03]" {
		t.Fatal(rows)
	}
}

// FuzzHivePath checks that no directory name or partition_types spec
// makes the layout parsing panic, and that keys and values pair up.
func FuzzHivePath(f *testing.F) {
	f.Add("a/dt=2024-01-01/region=North%2FEast/x", "dt=date,region=decimal(10,2)")
	f.Add("k=%zz/=v/k2=", "k=varchar,")
	f.Fuzz(func(t *testing.T, dir, types string) {
		k, v := hiveKeys(dir)
		if len(k) != len(v) {
			t.Fatalf("%d keys, %d values", len(k), len(v))
		}
		_ = splitTypes(types)
		_ = inferType(v)
	})
}
