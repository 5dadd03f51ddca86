package datagen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files under testdata/")

// small are the options most tests use: fast, but with several files and
// several row groups per file.
func small() Options {
	return Options{Rows: 50_000, Files: 3, RowGroupRows: 10_000, Customers: 2_000, Threads: 2}
}

// generate runs Generate into a fresh directory unless o.Dir is set.
func generate(t testing.TB, o Options) Result {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	res, err := Generate(context.Background(), o)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", o, err)
	}
	return res
}

func openDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// scan runs q, which must return one row, into dest.
func scan(t testing.TB, db *sql.DB, q string, dest ...any) {
	t.Helper()
	if err := db.QueryRow(q).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func eventsGlob(dir, format string) string {
	return quote(filepath.Join(dir, "events", "*."+format))
}

func customersFile(dir, format string) string {
	return quote(filepath.Join(dir, "customers", "customers."+format))
}

// hashes returns the sha256 of every regular file under dir by relative path.
func hashes(t testing.TB, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// names returns the sorted names of the regular files under dir.
func names(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	for name := range hashes(t, dir) {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func TestGenerateLayoutAndCounts(t *testing.T) {
	o := small()
	// A directory that does not exist yet, with a quote to escape in SQL.
	o.Dir = filepath.Join(t.TempDir(), "it's", "data")
	res := generate(t, o)

	want := []string{
		filepath.Join(o.Dir, "events", "part-00000.parquet"),
		filepath.Join(o.Dir, "events", "part-00001.parquet"),
		filepath.Join(o.Dir, "events", "part-00002.parquet"),
		filepath.Join(o.Dir, "customers", "customers.parquet"),
	}
	if !slices.Equal(res.Files, want) {
		t.Fatalf("Files = %v, want %v", res.Files, want)
	}
	if res.Rows != o.Rows {
		t.Errorf("Rows = %d, want %d", res.Rows, o.Rows)
	}
	var size int64
	for _, f := range res.Files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	if res.Bytes != size {
		t.Errorf("Bytes = %d, files hold %d", res.Bytes, size)
	}
	if got := names(t, o.Dir); len(got) != len(want) {
		t.Errorf("directory holds %v, want only the %d result files", got, len(want))
	}

	db := openDB(t)
	var next int64
	for f, path := range res.Files[:o.Files] {
		var n, lo, hi, distinct int64
		scan(t, db, fmt.Sprintf("SELECT count(*), min(event_id), max(event_id), count(DISTINCT event_id) FROM read_parquet(%s)", quote(path)),
			&n, &lo, &hi, &distinct)
		_, wantN := split(o.Rows, o.Files, f)
		if n != wantN || distinct != n || lo != next || hi != next+n-1 {
			t.Errorf("file %d: rows %d distinct %d event_id [%d, %d], want %d rows with event_id [%d, %d]",
				f, n, distinct, lo, hi, wantN, next, next+wantN-1)
		}
		next += n
	}
	if next != o.Rows {
		t.Errorf("files hold %d rows, want %d", next, o.Rows)
	}

	// Rows are stored in event_id order within each file.
	var unordered int64
	scan(t, db, fmt.Sprintf(`SELECT count(*) FROM (
		SELECT event_id - lag(event_id) OVER (PARTITION BY filename ORDER BY file_row_number) AS d
		FROM read_parquet(%s, filename = true, file_row_number = true)) WHERE d <> 1`, eventsGlob(o.Dir, "parquet")), &unordered)
	if unordered != 0 {
		t.Errorf("%d rows out of event_id order", unordered)
	}

	var customers, distinct, lo, hi int64
	scan(t, db, fmt.Sprintf("SELECT count(*), count(DISTINCT customer_id), min(customer_id), max(customer_id) FROM read_parquet(%s)",
		customersFile(o.Dir, "parquet")), &customers, &distinct, &lo, &hi)
	if customers != o.Customers || distinct != customers || lo != 1 || hi != o.Customers {
		t.Errorf("customers: %d rows, %d distinct ids in [%d, %d], want ids 1..%d", customers, distinct, lo, hi, o.Customers)
	}

	var outOfRange, orphans int64
	scan(t, db, fmt.Sprintf(`SELECT count(*) FILTER (WHERE customer_id NOT BETWEEN 1 AND %d),
		count(*) FILTER (WHERE customer_id NOT IN (SELECT customer_id FROM read_parquet(%s)))
		FROM read_parquet(%s)`, o.Customers, customersFile(o.Dir, "parquet"), eventsGlob(o.Dir, "parquet")), &outOfRange, &orphans)
	if outOfRange != 0 || orphans != 0 {
		t.Errorf("events with customer_id out of range: %d, without a customer: %d", outOfRange, orphans)
	}
}

func TestGenerateSchema(t *testing.T) {
	o := small()
	o.Dir = t.TempDir()
	generate(t, o)
	db := openDB(t)

	tests := map[string]struct {
		from string
		want []string
	}{
		"events": {
			from: fmt.Sprintf("read_parquet(%s)", eventsGlob(o.Dir, "parquet")),
			want: []string{
				"event_id BIGINT", "customer_id INTEGER", "ts TIMESTAMP", "dt DATE", "event_type VARCHAR",
				"country VARCHAR", "device VARCHAR", "amount DOUBLE", "quantity INTEGER", "session_ms BIGINT",
				"is_mobile BOOLEAN", "price DECIMAL(10,2)",
			},
		},
		"customers": {
			from: fmt.Sprintf("read_parquet(%s)", customersFile(o.Dir, "parquet")),
			want: []string{
				"customer_id INTEGER", "name VARCHAR", "segment VARCHAR", "signup_date DATE", "country VARCHAR",
				"lifetime_value DOUBLE",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rows, err := db.Query("SELECT column_name || ' ' || column_type FROM (DESCRIBE SELECT * FROM " + tc.from + ")")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var c string
				if err := rows.Scan(&c); err != nil {
					t.Fatal(err)
				}
				got = append(got, c)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("schema = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGenerateValues(t *testing.T) {
	o := small()
	o.Dir = t.TempDir()
	generate(t, o)
	db := openDB(t)
	events := fmt.Sprintf("read_parquet(%s)", eventsGlob(o.Dir, "parquet"))
	customers := fmt.Sprintf("read_parquet(%s)", customersFile(o.Dir, "parquet"))

	// Each query returns a count of rows that break an invariant.
	invariants := map[string]string{
		"is_mobile null iff device null":    "SELECT count(*) FROM " + events + " WHERE (is_mobile IS NULL) <> (device IS NULL) OR is_mobile <> (device <> 'web')",
		"quantity null iff view or click":   "SELECT count(*) FROM " + events + " WHERE (quantity IS NULL) <> (event_type IN ('view', 'click')) OR quantity NOT BETWEEN 1 AND 10",
		"amount zero unless purchase":       "SELECT count(*) FROM " + events + " WHERE event_type NOT IN ('purchase', 'refund') AND amount <> 0",
		"purchase positive":                 "SELECT count(*) FROM " + events + " WHERE event_type = 'purchase' AND NOT amount > 0",
		"refund negative":                   "SELECT count(*) FROM " + events + " WHERE event_type = 'refund' AND NOT amount < 0",
		"amount in cents":                   "SELECT count(*) FROM " + events + " WHERE abs(amount * 100 - round(amount * 100)) > 1e-6",
		"amount is price times quantity":    "SELECT count(*) FROM " + events + " WHERE price IS NOT NULL AND quantity IS NOT NULL AND abs(abs(amount) - price * quantity) > 0.005 AND event_type IN ('purchase', 'refund')",
		"dt is ts date":                     "SELECT count(*) FROM " + events + " WHERE dt <> ts::DATE",
		"ts within 90 days from 2024-01-01": "SELECT count(*) FROM " + events + " WHERE ts < TIMESTAMP '2024-01-01' OR ts >= TIMESTAMP '2024-03-31'",
		"known event types":                 "SELECT count(*) FROM " + events + " WHERE event_type NOT IN ('view', 'click', 'add_to_cart', 'purchase', 'refund') OR event_type IS NULL",
		"known devices":                     "SELECT count(*) FROM " + events + " WHERE device NOT IN ('ios', 'android', 'web')",
		"country present":                   "SELECT count(*) FROM " + events + " WHERE country IS NULL OR length(country) <> 2",
		"positive prices":                   "SELECT count(*) FROM " + events + " WHERE price <= 0",
		"session length":                    "SELECT count(*) FROM " + events + " WHERE session_ms IS NULL OR session_ms < 50",
		"ts follows event_id within 30s":    "SELECT count(*) FROM (SELECT ts, max(ts) OVER (ORDER BY event_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS m FROM " + events + ") WHERE ts < m - INTERVAL 61 SECOND",
		"known segments":                    "SELECT count(*) FROM " + customers + " WHERE segment NOT IN ('consumer', 'smb', 'enterprise') OR segment IS NULL",
		"named customers":                   "SELECT count(*) FROM " + customers + " WHERE name IS NULL OR name NOT LIKE '% %'",
		"signup before events":              "SELECT count(*) FROM " + customers + " WHERE signup_date NOT BETWEEN DATE '2019-01-01' AND DATE '2023-12-31'",
		"positive lifetime value":           "SELECT count(*) FROM " + customers + " WHERE lifetime_value <= 0",
	}
	for name, q := range invariants {
		t.Run(name, func(t *testing.T) {
			var bad int64
			scan(t, db, q, &bad)
			if bad != 0 {
				t.Errorf("%d rows break the invariant: %s", bad, q)
			}
		})
	}

	// Each query returns a fraction that must fall in [lo, hi].
	fractions := map[string]struct {
		q      string
		lo, hi float64
	}{
		"device null":         {"SELECT avg((device IS NULL)::INT) FROM " + events, 0.015, 0.025},
		"price null":          {"SELECT avg((price IS NULL)::INT) FROM " + events, 0.007, 0.013},
		"lifetime value null": {"SELECT avg((lifetime_value IS NULL)::INT) FROM " + customers, 0.005, 0.03},
		"views":               {"SELECT avg((event_type = 'view')::INT) FROM " + events, 0.60, 0.64},
		"clicks":              {"SELECT avg((event_type = 'click')::INT) FROM " + events, 0.22, 0.26},
		"add to cart":         {"SELECT avg((event_type = 'add_to_cart')::INT) FROM " + events, 0.08, 0.10},
		"purchases":           {"SELECT avg((event_type = 'purchase')::INT) FROM " + events, 0.04, 0.05},
		"refunds":             {"SELECT avg((event_type = 'refund')::INT) FROM " + events, 0.003, 0.007},
		"US share":            {"SELECT avg((country = 'US')::INT) FROM " + events, 0.25, 0.31},
		"mobile share":        {"SELECT avg(is_mobile::INT) FROM " + events, 0.77, 0.83},
		"consumers":           {"SELECT avg((segment = 'consumer')::INT) FROM " + customers, 0.76, 0.84},
		// The 1% most active customers produce far more than 1% of events.
		"top 1% customers share": {"SELECT sum(n) / 50000.0 FROM (SELECT count(*) AS n FROM " + events +
			" GROUP BY customer_id ORDER BY n DESC LIMIT 20)", 0.05, 0.2},
		// Events mostly happen in the customer's home country.
		"home country": {"SELECT avg((e.country = c.country)::INT) FROM " + events + " e JOIN " + customers +
			" c USING (customer_id)", 0.9, 0.99},
		// Traffic grows over the period: March has more events than January.
		"march over january": {"SELECT count(*) FILTER (WHERE month(dt) = 3) / count(*) FILTER (WHERE month(dt) = 1) FROM " + events, 1.1, 1.5},
		// Daily cycle: noon is much busier than midnight.
		"midnight over noon": {"SELECT count(*) FILTER (WHERE hour(ts) = 0) / count(*) FILTER (WHERE hour(ts) = 12) FROM " + events, 0.01, 0.1},
	}
	for name, tc := range fractions {
		t.Run(name, func(t *testing.T) {
			var got float64
			scan(t, db, tc.q, &got)
			if got < tc.lo || got > tc.hi {
				t.Errorf("%s = %.4f, want in [%g, %g]", name, got, tc.lo, tc.hi)
			}
		})
	}

	// Each query returns a count that must equal want.
	counts := map[string]struct {
		q    string
		want int64
	}{
		"countries":   {"SELECT count(DISTINCT country) FROM " + events, 15},
		"event days":  {"SELECT count(DISTINCT dt) FROM " + events, 90},
		"event types": {"SELECT count(DISTINCT event_type) FROM " + events, 5},
	}
	for name, tc := range counts {
		t.Run(name, func(t *testing.T) {
			var got int64
			scan(t, db, tc.q, &got)
			if got != tc.want {
				t.Errorf("%s = %d, want %d", name, got, tc.want)
			}
		})
	}
}

func TestGenerateRowGroups(t *testing.T) {
	tests := map[string]struct {
		rowGroupRows int64
		wantSize     int64
	}{
		"vector multiple":  {rowGroupRows: 4096, wantSize: 4096},
		"rounded up":       {rowGroupRows: 10_000, wantSize: 10_240},
		"default":          {rowGroupRows: 0, wantSize: DefaultRowGroupRows},
		"larger than file": {rowGroupRows: 1_000_000, wantSize: 1_001_472},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := small()
			o.Dir = t.TempDir()
			o.RowGroupRows = tc.rowGroupRows
			res := generate(t, o)
			db := openDB(t)
			for f, path := range res.Files[:o.Files] {
				_, n := split(o.Rows, o.Files, f)
				var groups, largest int64
				scan(t, db, fmt.Sprintf("SELECT count(DISTINCT row_group_id), max(row_group_num_rows) FROM parquet_metadata(%s)", quote(path)),
					&groups, &largest)
				if want := RowGroups(n, tc.rowGroupRows); groups != want {
					t.Errorf("file %d: %d row groups, want %d", f, groups, want)
				}
				if want := min(n, tc.wantSize); largest != want {
					t.Errorf("file %d: largest row group has %d rows, want %d", f, largest, want)
				}
			}
		})
	}
}

func TestGenerateDeterministic(t *testing.T) {
	base := small()
	first := t.TempDir()
	o := base
	o.Dir = first
	generate(t, o)
	want := hashes(t, first)

	tests := map[string]struct {
		change func(*Options)
		same   bool
	}{
		"same options":       {change: func(*Options) {}, same: true},
		"one thread":         {change: func(o *Options) { o.Threads = 1 }, same: true},
		"four threads":       {change: func(o *Options) { o.Threads = 4 }, same: true},
		"other seed":         {change: func(o *Options) { o.Seed = 7 }, same: false},
		"other customers":    {change: func(o *Options) { o.Customers = 3_000 }, same: false},
		"default seed is 42": {change: func(o *Options) { o.Seed = DefaultSeed }, same: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := base
			o.Dir = t.TempDir()
			tc.change(&o)
			generate(t, o)
			got := hashes(t, o.Dir)
			if len(got) != len(want) {
				t.Fatalf("wrote %d files, want %d", len(got), len(want))
			}
			for name, h := range want {
				if same := got[name] == h; same != tc.same {
					t.Errorf("%s identical to the first run: %v, want %v", name, same, tc.same)
				}
			}
		})
	}
}

func TestGenerateCSV(t *testing.T) {
	o := small()
	o.Format = FormatCSV
	o.Dir = t.TempDir()
	res := generate(t, o)
	want := []string{
		filepath.Join(o.Dir, "events", "part-00000.csv"),
		filepath.Join(o.Dir, "events", "part-00001.csv"),
		filepath.Join(o.Dir, "events", "part-00002.csv"),
		filepath.Join(o.Dir, "customers", "customers.parquet"),
		filepath.Join(o.Dir, "customers", "customers.csv"),
	}
	if !slices.Equal(res.Files, want) {
		t.Fatalf("Files = %v, want %v", res.Files, want)
	}
	header, err := os.ReadFile(want[0])
	if err != nil {
		t.Fatal(err)
	}
	const wantHeader = "event_id,customer_id,ts,dt,event_type,country,device,amount,quantity,session_ms,is_mobile,price\n"
	if !bytes.HasPrefix(header, []byte(wantHeader)) {
		t.Errorf("events CSV starts %q, want header %q", header[:min(len(header), 120)], wantHeader)
	}

	// The CSV events hold the same data as the Parquet events.
	p := small()
	p.Dir = t.TempDir()
	generate(t, p)
	db := openDB(t)
	agg := "SELECT count(*), count(DISTINCT event_id), sum(event_id), count(device), count(price), round(sum(price) * 100)::BIGINT, sum(amount * 100)::BIGINT, sum(session_ms), count(quantity), min(ts)::VARCHAR, max(dt)::VARCHAR FROM "
	csvAgg := scanStrings(t, db, agg+fmt.Sprintf("read_csv(%s, header = true)", eventsGlob(o.Dir, "csv")))
	pqAgg := scanStrings(t, db, agg+fmt.Sprintf("read_parquet(%s)", eventsGlob(p.Dir, "parquet")))
	if !slices.Equal(csvAgg, pqAgg) {
		t.Errorf("CSV events aggregate to %v, Parquet events to %v", csvAgg, pqAgg)
	}
	if csvAgg[0] != fmt.Sprint(o.Rows) {
		t.Errorf("CSV events hold %s rows, want %d", csvAgg[0], o.Rows)
	}

	var diff int64
	scan(t, db, fmt.Sprintf("SELECT count(*) FROM (SELECT * FROM read_csv(%s, header = true) EXCEPT ALL SELECT * FROM read_parquet(%s))",
		customersFile(o.Dir, "csv"), customersFile(o.Dir, "parquet")), &diff)
	if diff != 0 {
		t.Errorf("%d customers rows differ between CSV and Parquet", diff)
	}
}

// scanStrings runs q, which must return one row, and returns its columns as
// strings.
func scanStrings(t testing.TB, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("%s: no rows: %v", q, rows.Err())
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = fmt.Sprint(v)
	}
	return out
}

// TestGenerateGolden pins the dataset's content: a change to the generator
// that alters any value shows up here as a diff. Regenerate with
// go test ./internal/datagen -run Golden -rewrite and review the diff.
func TestGenerateGolden(t *testing.T) {
	o := Options{Dir: t.TempDir(), Rows: 24, Files: 2, Customers: 6, Format: FormatCSV}
	res := generate(t, o)
	for _, path := range res.Files {
		if filepath.Ext(path) != ".csv" {
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "golden", filepath.Base(filepath.Dir(path))+"-"+filepath.Base(path))
		if *rewrite {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -rewrite to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s:\ngot:\n%s\nwant:\n%s", path, golden, got, want)
		}
	}
}

func TestGenerateReplacesStaleFiles(t *testing.T) {
	dir := t.TempDir()
	o := small()
	o.Dir = dir
	generate(t, o)
	notes := filepath.Join(dir, "events", "notes.txt")
	if err := os.WriteFile(notes, []byte("not ours"), 0o644); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name   string
		files  int
		format string
		want   []string
	}{
		{"fewer csv files", 2, FormatCSV, []string{
			"customers/customers.csv", "customers/customers.parquet",
			"events/notes.txt", "events/part-00000.csv", "events/part-00001.csv",
		}},
		{"back to parquet", 2, FormatParquet, []string{
			"customers/customers.parquet",
			"events/notes.txt", "events/part-00000.parquet", "events/part-00001.parquet",
		}},
	}
	for _, st := range steps {
		o.Files, o.Format = st.files, st.format
		generate(t, o)
		got := names(t, dir)
		for i := range got {
			got[i] = filepath.ToSlash(got[i])
		}
		if !slices.Equal(got, st.want) {
			t.Errorf("%s: directory holds %v, want %v", st.name, got, st.want)
		}
	}
}

func TestGenerateBadOptions(t *testing.T) {
	tests := map[string]struct {
		change func(*Options)
		want   string
	}{
		"no dir":               {func(o *Options) { o.Dir = "" }, "dir is empty"},
		"negative rows":        {func(o *Options) { o.Rows = -1 }, "rows -1 is negative"},
		"negative files":       {func(o *Options) { o.Files = -2 }, "files -2 is negative"},
		"more files than rows": {func(o *Options) { o.Rows, o.Files = 3, 4 }, "files 4 exceeds rows 3"},
		"negative row group":   {func(o *Options) { o.RowGroupRows = -5 }, "row group rows -5 is negative"},
		"negative customers":   {func(o *Options) { o.Customers = -1 }, "customers -1 is negative"},
		"too many customers":   {func(o *Options) { o.Customers = math.MaxInt32 + 1 }, "exceeds the INTEGER range"},
		"negative threads":     {func(o *Options) { o.Threads = -1 }, "threads -1 is negative"},
		"unknown format":       {func(o *Options) { o.Format = "json" }, `format "json"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			o := small()
			o.Dir = dir
			tc.change(&o)
			_, err := Generate(context.Background(), o)
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("err = %v, want ErrInvalidOptions", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to mention %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("invalid options created %s (stat: %v)", dir, err)
			}
		})
	}
}

func TestGenerateCancelled(t *testing.T) {
	o := small()
	o.Dir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Generate(ctx, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := names(t, o.Dir); len(got) != 0 {
		t.Errorf("cancelled run left files %v", got)
	}
}

// TestGenerateCancelMidway cancels a run while DuckDB writes and checks that
// the previous dataset in the same directory is left untouched: no partial
// file under a final name, no temporary files.
func TestGenerateCancelMidway(t *testing.T) {
	o := small()
	o.Dir = t.TempDir()
	generate(t, o)
	before := hashes(t, o.Dir)

	big := o
	big.Rows, big.Files, big.RowGroupRows = 50_000_000, 2, 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel as soon as DuckDB has started a temporary file, or after
		// a while if it has not shown up yet.
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			entries, _ := os.ReadDir(filepath.Join(o.Dir, "events"))
			if slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return tmpFile.MatchString(e.Name()) }) {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	_, err := Generate(ctx, big)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("cancelled Generate took %v", d)
	}
	after := hashes(t, o.Dir)
	if len(after) != len(before) {
		t.Errorf("directory holds %v after the cancelled run, want the earlier %d files", names(t, o.Dir), len(before))
	}
	for name, h := range before {
		if after[name] != h {
			t.Errorf("%s changed by the cancelled run", name)
		}
	}
}

func TestSplit(t *testing.T) {
	tests := map[string]struct {
		rows  int64
		files int
	}{
		"even":       {rows: 100, files: 4},
		"remainder":  {rows: 50_000, files: 3},
		"one file":   {rows: 7, files: 1},
		"one each":   {rows: 5, files: 5},
		"huge":       {rows: math.MaxInt64, files: 7},
		"many files": {rows: 1_000_003, files: 1000},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var next int64
			for f := range tc.files {
				start, n := split(tc.rows, tc.files, f)
				if start != next {
					t.Fatalf("file %d starts at %d, want %d", f, start, next)
				}
				if base := tc.rows / int64(tc.files); n != base && n != base+1 {
					t.Fatalf("file %d has %d rows, want %d or %d", f, n, base, base+1)
				}
				next += n
			}
			if next != tc.rows {
				t.Errorf("files hold %d rows, want %d", next, tc.rows)
			}
		})
	}
}

func TestRowGroups(t *testing.T) {
	tests := map[string]struct {
		rows, rowGroupRows, want int64
	}{
		"empty":          {rows: 0, rowGroupRows: 10_000, want: 0},
		"exact":          {rows: 4096, rowGroupRows: 2048, want: 2},
		"rounded up":     {rows: 16_667, rowGroupRows: 10_000, want: 2},
		"one partial":    {rows: 10_241, rowGroupRows: 10_240, want: 2},
		"default":        {rows: 1_000_000, rowGroupRows: 0, want: 9},
		"tiny groups":    {rows: 5000, rowGroupRows: 1, want: 3},
		"bigger than us": {rows: 10, rowGroupRows: 1_000_000, want: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := RowGroups(tc.rows, tc.rowGroupRows); got != tc.want {
				t.Errorf("RowGroups(%d, %d) = %d, want %d", tc.rows, tc.rowGroupRows, got, tc.want)
			}
		})
	}
}

func TestCustomerPermutation(t *testing.T) {
	for _, n := range []int64{1, 2, 3, 10, 12, 97, 1000, 10_000, 65_536} {
		for _, seed := range []uint64{1, 42, math.MaxUint64} {
			p, inv, off := custPerm(seed, n)
			if off < 0 || off >= n || p < 1 || (n > 1 && p >= n) {
				t.Fatalf("n=%d seed=%d: p=%d off=%d out of range", n, seed, p, off)
			}
			seen := make([]bool, n)
			for rank := range n {
				id := (rank*p + off) % n
				if seen[id] {
					t.Fatalf("n=%d seed=%d: id %d hit twice", n, seed, id+1)
				}
				seen[id] = true
				if back := (((id-off)%n + n) % n) * inv % n; back != rank {
					t.Fatalf("n=%d seed=%d: rank %d maps back to %d", n, seed, rank, back)
				}
			}
		}
	}
}

// lowbias32 is the reference implementation of the hash the SQL computes.
func lowbias32(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x7feb352d
	x ^= x >> 15
	x *= 0x846ca68b
	x ^= x >> 16
	return x
}

func TestHashMatchesReference(t *testing.T) {
	inputs := []uint32{0, 1, 2, 42, 0x7fffffff, 0x80000000, 0xdeadbeef, math.MaxUint32}
	db := openDB(t)
	for _, in := range inputs {
		c := newChain(fmt.Sprintf("SELECT %d::UBIGINT AS x", in))
		c.hash([]string{"h"}, []string{"x"})
		var got uint64
		scan(t, db, "SELECT h FROM ("+c.sql+")", &got)
		if want := lowbias32(in); got != uint64(want) {
			t.Errorf("SQL lowbias32(%#x) = %#x, want %#x", in, got, want)
		}
	}
}

func TestSplitmix64(t *testing.T) {
	// First outputs of Vigna's SplitMix64 seeded with 0.
	tests := map[string]struct {
		in, want uint64
	}{
		"state 0": {in: 0, want: 0xe220a8397b1dcdaf},
		"state 1": {in: 0x9e3779b97f4a7c15, want: 0x6e789e6aa1b965f4},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := splitmix64(tc.in); got != tc.want {
				t.Errorf("splitmix64(%#x) = %#x, want %#x", tc.in, got, tc.want)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	tests := map[string]struct {
		in, want Options
	}{
		"zero": {
			in: Options{Dir: "d"},
			want: Options{Dir: "d", Rows: 1_000_000, Files: 8, RowGroupRows: 122_880, Customers: 10_000,
				Seed: 42, Format: "parquet", Threads: runtime.NumCPU()},
		},
		"few rows": {
			in: Options{Dir: "d", Rows: 3},
			want: Options{Dir: "d", Rows: 3, Files: 3, RowGroupRows: 122_880, Customers: 10_000,
				Seed: 42, Format: "parquet", Threads: runtime.NumCPU()},
		},
		"explicit": {
			in:   Options{Dir: "d", Rows: 5, Files: 2, RowGroupRows: 7, Customers: 9, Seed: 1, Format: "csv", Threads: 3},
			want: Options{Dir: "d", Rows: 5, Files: 2, RowGroupRows: 7, Customers: 9, Seed: 1, Format: "csv", Threads: 3},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.in.withDefaults(); got != tc.want {
				t.Errorf("withDefaults() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestGenerateTiny(t *testing.T) {
	o := Options{Dir: t.TempDir(), Rows: 3, Customers: 1}
	res := generate(t, o)
	if len(res.Files) != 4 {
		t.Fatalf("Files = %v, want 3 events files and customers", res.Files)
	}
	db := openDB(t)
	var n, ids int64
	scan(t, db, fmt.Sprintf("SELECT count(*), count(DISTINCT customer_id) FROM read_parquet(%s)", eventsGlob(o.Dir, "parquet")), &n, &ids)
	if n != 3 || ids != 1 {
		t.Errorf("got %d events of %d customers, want 3 events of 1 customer", n, ids)
	}
}

// TestGenerateLayoutIndependent checks that Files, RowGroupRows, Threads and
// Format change the layout, never a value.
func TestGenerateLayoutIndependent(t *testing.T) {
	a := small()
	a.Dir = t.TempDir()
	generate(t, a)
	b := a
	b.Dir, b.Files, b.RowGroupRows, b.Threads = t.TempDir(), 5, 4096, 1
	generate(t, b)
	c := a
	c.Dir, c.Files, c.Format = t.TempDir(), 1, FormatCSV
	generate(t, c)

	db := openDB(t)
	pa := fmt.Sprintf("SELECT * FROM read_parquet(%s)", eventsGlob(a.Dir, "parquet"))
	pb := fmt.Sprintf("SELECT * FROM read_parquet(%s)", eventsGlob(b.Dir, "parquet"))
	// Read the CSV with the Parquet schema so that values compare exactly.
	pc := fmt.Sprintf(`SELECT * FROM read_csv(%s, header = true, columns = {
		'event_id': 'BIGINT', 'customer_id': 'INTEGER', 'ts': 'TIMESTAMP', 'dt': 'DATE',
		'event_type': 'VARCHAR', 'country': 'VARCHAR', 'device': 'VARCHAR', 'amount': 'DOUBLE',
		'quantity': 'INTEGER', 'session_ms': 'BIGINT', 'is_mobile': 'BOOLEAN', 'price': 'DECIMAL(10,2)'})`,
		eventsGlob(c.Dir, "csv"))
	tests := map[string]struct{ x, y string }{
		"parquet a minus b": {pa, pb},
		"parquet b minus a": {pb, pa},
		"parquet minus csv": {pa, pc},
		"csv minus parquet": {pc, pa},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var n int64
			scan(t, db, "SELECT count(*) FROM ("+tc.x+" EXCEPT ALL "+tc.y+")", &n)
			if n != 0 {
				t.Errorf("%d rows differ", n)
			}
		})
	}
}
