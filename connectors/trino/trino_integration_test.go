package trino_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/connectors/conformance"
	"github.com/liminal-data/liminal/connectors/trino"
	"github.com/liminal-data/liminal/partition"
)

// The live tests share one Trino: $LIMINAL_TRINO_URL, or one that
// scripts/trino.sh starts on first use and TestMain stops (PrestoDB alike
// with scripts/presto.sh and LIMINAL_PRESTO_URL). Without a server they
// fail with the script's output, unless LIMINAL_SKIP_INTEGRATION=1.
type liveServer struct {
	script, prefix string // "trino.sh", "LIMINAL_TRINO"
	once           sync.Once
	url            string
	dir            string // set when this process started the server
	err            error
	out            string
}

var (
	trinoServer  = &liveServer{script: "trino.sh", prefix: "LIMINAL_TRINO"}
	prestoServer = &liveServer{script: "presto.sh", prefix: "LIMINAL_PRESTO"}
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range []*liveServer{trinoServer, prestoServer} {
		if s.dir != "" {
			cmd := exec.Command(filepath.Join(repoRoot(), "scripts", s.script), "stop", s.dir)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			_ = cmd.Run()
		}
	}
	os.Exit(code)
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

// get returns the server's URL (trino://user@host:port), starting it on
// first use.
func (s *liveServer) get(t testing.TB) string {
	t.Helper()
	if os.Getenv("LIMINAL_SKIP_INTEGRATION") == "1" {
		t.Skip("LIMINAL_SKIP_INTEGRATION=1")
	}
	s.once.Do(func() {
		if u := os.Getenv(s.prefix + "_URL"); u != "" {
			s.url = u
			return
		}
		cmd := exec.Command(filepath.Join(repoRoot(), "scripts", s.script), "start")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		s.err = cmd.Run()
		s.out = stdout.String() + stderr.String()
		sc := bufio.NewScanner(&stdout)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				switch k {
				case s.prefix + "_URL":
					s.url = v
				case s.prefix + "_DIR":
					s.dir = v
				}
			}
		}
		if s.err == nil && s.url == "" {
			s.err = errors.New("no " + s.prefix + "_URL in the output")
		}
	})
	if s.err != nil {
		t.Fatalf("scripts/%s start: %v\n%s", s.script, s.err, s.out)
	}
	return s.url
}

// server returns the URL of the live Trino.
func server(t testing.TB) string { return trinoServer.get(t) }

// admin is a plain database/sql connection for setting up tables and
// computing expected results with Trino itself.
func admin(t testing.TB) *sql.DB {
	t.Helper()
	u, err := url.Parse(server(t))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("trino", "http://"+u.User.Username()+"@"+u.Host+"?catalog=tpch&schema=tiny")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func open(t testing.TB, path string, opts map[string]string, secret string, mem memory.Allocator) *trino.Source {
	t.Helper()
	s, err := trino.Open(context.Background(), connectors.SourceConfig{Name: "src", URI: server(t) + path, Options: opts, Secret: secret}, trino.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// readSplits reads every split of s (projected to cols) and returns the
// rows in canonical form.
func readSplits(t testing.TB, s *trino.Source, splits []partition.Split, cols []string) [][]any {
	t.Helper()
	var all [][]any
	for _, sp := range splits {
		r, err := s.Read(context.Background(), sp, cols)
		if err != nil {
			t.Fatalf("split %s: %v", sp.ID, err)
		}
		rows, err := conformance.ReadAll(r)
		r.Release()
		if err != nil {
			t.Fatalf("split %s: %v", sp.ID, err)
		}
		all = append(all, rows...)
	}
	return all
}

func TestTypesIntegration(t *testing.T) {
	db := admin(t)
	table := fmt.Sprintf("types_%d", time.Now().UnixNano())
	_, err := db.Exec(`CREATE TABLE memory.default.` + table + ` AS SELECT * FROM (VALUES
		(1, TINYINT '-8', SMALLINT '300', 70000, BIGINT '9007199254740993', REAL '1.5', DOUBLE '2.25',
		 CAST(-12.5 AS DECIMAL(10,2)), CAST('12345678901234567890.123456789' AS DECIMAL(38,9)), true,
		 'héllo', CAST('ab' AS CHAR(3)), X'cafe', DATE '2024-02-29',
		 TIMESTAMP '2024-02-29 12:34:56.123456', TIMESTAMP '2024-02-29 12:34:56.123456789',
		 TIMESTAMP '2024-02-29 12:34:56.123 +05:30', TIME '12:34:56.789',
		 UUID '12151fd2-7586-11e9-8f9e-2a86e4085a59', JSON '{"a":1}',
		 ARRAY[1, NULL, 3], MAP(ARRAY['k1', 'k2'], ARRAY[10, NULL]),
		 CAST(ROW(7, 'x') AS ROW(a INTEGER, b VARCHAR)),
		 ARRAY[CAST(ROW(DATE '2024-01-01', TIMESTAMP '2024-01-01 01:02:03.456') AS ROW(d DATE, ts TIMESTAMP(3)))]),
		(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
		 NULL, NULL, NULL, NULL, NULL, NULL)
	) AS v(id, ti, si, i, bi, r, d, dec, dec38, b, vc, ch, vb, dt, ts6, ts9, tstz, tm, u, js, arr, mp, rw, arr_rw)`)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := open(t, "/memory/default", map[string]string{"table": table}, "", mem)
	sc, err := s.Schema(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := map[string]string{
		"id": "int32", "ti": "int8", "si": "int16", "i": "int32", "bi": "int64", "r": "float32", "d": "float64",
		"dec": "decimal(10, 2)", "dec38": "decimal(38, 9)", "b": "bool", "vc": "utf8", "ch": "utf8", "vb": "binary",
		"dt": "date32", "ts6": "timestamp[us]", "ts9": "timestamp[ns]", "tstz": "timestamp[us, tz=UTC]",
		"tm": "time64[us]", "u": "utf8", "js": "utf8", "arr": "list<item: int32, nullable>",
		"mp": "map<utf8, int32, items_nullable>", "rw": "struct<a: int32 nullable, b: utf8 nullable>",
		"arr_rw": "list<item: struct<d: date32 nullable, ts: timestamp[us] nullable>, nullable>",
	}
	for _, f := range sc.Fields() {
		if got, want := f.Type.String(), wantTypes[f.Name]; got != want {
			t.Errorf("column %s: %s, want %s", f.Name, got, want)
		}
	}
	if sc.NumFields() != len(wantTypes) {
		t.Errorf("%d columns, want %d", sc.NumFields(), len(wantTypes))
	}
	splits, err := s.Splits(context.Background(), partition.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rows := readSplits(t, s, splits, nil)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	if rows[0][0] != int64(1) {
		rows[0], rows[1] = rows[1], rows[0]
	}
	got := map[string]string{}
	for i, f := range sc.Fields() {
		got[f.Name] = fmt.Sprint(rows[0][i])
		if i > 0 && rows[1][i] != nil {
			t.Errorf("column %s: NULL row reads %v", f.Name, rows[1][i])
		}
	}
	want := map[string]string{
		"ti": "-8", "si": "300", "i": "70000", "bi": "9007199254740993", "r": "1.5", "d": "2.25",
		"dec": "-12.50", "dec38": "12345678901234567890.123456789", "b": "true", "vc": "héllo", "ch": "ab ",
		"vb": "[202 254]", "dt": "2024-02-29", "ts6": "2024-02-29 12:34:56.123456",
		"ts9": "2024-02-29 12:34:56.123456", "tstz": "2024-02-29 07:04:56.123Z",
		"u": "12151fd2-7586-11e9-8f9e-2a86e4085a59", "js": `{"a":1}`, "arr": "[1 <nil> 3]",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("column %s = %q, want %q", k, got[k], w)
		}
	}
	// Columns the canonical form does not cover, by Arrow's text.
	r, err := s.Read(context.Background(), partition.Split{ID: "one", Attrs: map[string]string{"where": "id = 1"}}, []string{"tm", "mp", "rw", "arr_rw", "ts9"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Next() {
		t.Fatalf("no rows: %v", r.Err())
	}
	rec := r.RecordBatch()
	for i, w := range []string{"12:34:56.789", `[{"key":"k1","value":10},{"key":"k2","value":null}]`, `{"a":7,"b":"x"}`,
		`[{"d":"2024-01-01","ts":"2024-01-01T01:02:03.456"}]`, "2024-02-29T12:34:56.123456789"} {
		got := rec.Column(i).ValueStr(0)
		if i == 0 {
			got = rec.Column(0).(interface {
				Value(int) arrow.Time64
			}).Value(0).ToTime(arrow.Microsecond).Format("15:04:05.999999")
		}
		if got != w {
			t.Errorf("column %s = %s, want %s", rec.Schema().Field(i).Name, got, w)
		}
	}
}

func TestPartitionedReadIntegration(t *testing.T) {
	db := admin(t)
	nulls := fmt.Sprintf("nulls_%d", time.Now().UnixNano())
	if _, err := db.Exec(`CREATE TABLE memory.default.` + nulls + ` AS SELECT orderkey,
		CASE WHEN orderkey % 10 = 0 THEN NULL ELSE CAST(orderdate AS TIMESTAMP(3)) + orderkey * INTERVAL '1' SECOND END AS ts,
		CASE WHEN orderkey % 7 = 0 THEN NULL ELSE totalprice END AS price
		FROM tpch.tiny.orders`); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		path string
		opts map[string]string
		cols []string
	}{
		"orders orderkey":    {"/tpch/tiny", map[string]string{"table": "orders", "partition_column": "orderkey"}, nil},
		"orders orderdate":   {"/tpch/tiny", map[string]string{"table": "orders", "partition_column": "orderdate"}, []string{"orderkey", "orderdate", "totalprice"}},
		"lineitem orderkey":  {"/tpch/tiny", map[string]string{"table": "lineitem", "partition_column": "orderkey"}, []string{"orderkey", "linenumber", "extendedprice", "shipdate"}},
		"ts with nulls":      {"/memory/default", map[string]string{"table": nulls, "partition_column": "ts"}, nil},
		"double with nulls":  {"/memory/default", map[string]string{"table": nulls, "partition_column": "price"}, nil},
		"narrow bounds":      {"/tpch/tiny", map[string]string{"table": "orders", "partition_column": "orderkey", "lower_bound": "1000", "upper_bound": "2000"}, []string{"orderkey", "custkey"}},
		"query source":       {"/tpch/tiny", map[string]string{"query": "SELECT orderkey, custkey * 2 AS c2 FROM orders WHERE orderstatus = 'F'", "partition_column": "orderkey"}, nil},
		"qualified in query": {"", map[string]string{"query": "SELECT orderkey, comment FROM tpch.tiny.orders", "partition_column": "orderkey"}, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			s := open(t, tc.path, tc.opts, "", mem)
			whole, err := s.Splits(context.Background(), partition.Options{By: partition.None})
			if err != nil {
				t.Fatal(err)
			}
			if len(whole) != 1 {
				t.Fatalf("strategy none: %d splits", len(whole))
			}
			want := readSplits(t, s, whole, tc.cols)
			if len(want) == 0 {
				t.Fatal("no rows")
			}
			for _, n := range []int{2, 3, 7, 16} {
				o := partition.Options{TargetRows: int64(len(want)+n-1) / int64(n)}
				splits, err := s.Splits(context.Background(), o)
				if err != nil {
					t.Fatal(err)
				}
				if len(splits) < 2 {
					t.Fatalf("target %d rows: %d splits", o.TargetRows, len(splits))
				}
				got := readSplits(t, s, splits, tc.cols)
				if d := conformance.Diff(got, want); d != "" {
					t.Fatalf("%d splits: %s", len(splits), d)
				}
			}
		})
	}
	t.Run("partitions option", func(t *testing.T) {
		s := open(t, "/tpch/tiny", map[string]string{"table": "orders", "partition_column": "orderkey", "partitions": "5"}, "", memory.DefaultAllocator)
		splits, err := s.Splits(context.Background(), partition.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(splits) != 5 {
			t.Fatalf("%d splits, want 5", len(splits))
		}
		if !strings.Contains(splits[0].Attrs["where"], "IS NULL") {
			t.Errorf("first split %q does not take the NULLs", splits[0].Attrs["where"])
		}
	})
}

// TestPushdownWholeIntegration: pushdown=whole runs the user's query as
// written, in one split.
func TestPushdownWholeIntegration(t *testing.T) {
	q := "SELECT orderstatus, count(*) AS n FROM tpch.tiny.orders GROUP BY orderstatus"
	s := open(t, "", map[string]string{"query": q, "pushdown": "whole"}, "", memory.DefaultAllocator)
	splits, err := s.Splits(context.Background(), partition.Options{TargetRows: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(splits) != 1 {
		t.Fatalf("%d splits, want 1", len(splits))
	}
	got := readSplits(t, s, splits, nil)
	want := queryRows(t, admin(t), q)
	if d := conformance.Diff(got, want); d != "" {
		t.Fatal(d)
	}
	if !queryRan(t, q) {
		t.Errorf("Trino never ran the query as written")
	}
}

// queryRows runs q on Trino and returns its rows in canonical form (ints
// as int64, text as string).
func queryRows(t testing.TB, db *sql.DB, q string) [][]any {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		v := make([]any, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rows.Scan(p...); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// queryRan reports whether Trino ran a statement with exactly this text.
func queryRan(t testing.TB, text string) bool {
	t.Helper()
	var n int64
	err := admin(t).QueryRow("SELECT count(*) FROM system.runtime.queries WHERE query = ?", text).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestProjectionIntegration(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := open(t, "/tpch/tiny", map[string]string{"table": "orders"}, "", mem)
	splits, _ := s.Splits(context.Background(), partition.Options{})
	r, err := s.Read(context.Background(), splits[0], []string{"totalprice", "orderkey"})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Schema().String(); !strings.Contains(got, "totalprice: type=float64") || r.Schema().NumFields() != 2 || r.Schema().Field(1).Name != "orderkey" {
		t.Errorf("schema %s", got)
	}
	rows, err := conformance.ReadAll(r)
	r.Release()
	if err != nil {
		t.Fatal(err)
	}
	want := queryRows(t, admin(t), "SELECT totalprice, orderkey FROM tpch.tiny.orders")
	if d := conformance.Diff(rows, want); d != "" {
		t.Fatal(d)
	}
	// The projection reached Trino: only the two columns were selected.
	if !queryRan(t, `SELECT "totalprice", "orderkey" FROM "orders" liminal_t`) {
		t.Errorf("no query selecting only the projected columns ran on Trino")
	}
	// Zero columns still count rows.
	r, err = s.Read(context.Background(), splits[0], []string{})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for r.Next() {
		n += r.RecordBatch().NumRows()
	}
	r.Release()
	if n != 15000 {
		t.Errorf("zero-column read: %d rows, want 15000", n)
	}
}

// TestStreamingIntegration reads 1M rows of tpch.sf1.lineitem and checks
// that the Go heap stays bounded by a batch and a page, far below the
// data read.
func TestStreamingIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := open(t, "/tpch/sf1", map[string]string{"table": "lineitem"}, "", mem)
	splits, _ := s.Splits(context.Background(), partition.Options{By: partition.None})
	cols := []string{"orderkey", "partkey", "suppkey", "quantity", "extendedprice", "shipdate", "shipinstruct", "comment"}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	start := time.Now()
	r, err := s.Read(context.Background(), splits[0], cols)
	if err != nil {
		t.Fatal(err)
	}
	const want = 1_000_000
	var rows, bytes int64
	var peak uint64
	for rows < want && r.Next() {
		rec := r.RecordBatch()
		rows += rec.NumRows()
		for _, c := range rec.Columns() {
			for _, b := range c.Data().Buffers() {
				if b != nil {
					bytes += int64(b.Len())
				}
			}
		}
		if rows%(64*8192) < 8192 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc-min(ms.HeapAlloc, base))
		}
	}
	r.Release() // cancels the rest of the query
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms)
	peak = max(peak, ms.HeapAlloc-min(ms.HeapAlloc, base))
	el := time.Since(start)
	t.Logf("%d rows, %.0f MB of Arrow data in %s (%.0f rows/s); peak Go heap above baseline %.1f MB",
		rows, float64(bytes)/1e6, el.Round(time.Millisecond), float64(rows)/el.Seconds(), float64(peak)/1e6)
	if rows < want {
		t.Fatalf("read %d rows, want %d", rows, want)
	}
	if limit := uint64(bytes) / 3; peak > limit {
		t.Errorf("peak heap %d bytes is more than a third of the %d bytes read: the result is not streamed", peak, bytes)
	}
}

func TestCancelIntegration(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	marker := fmt.Sprintf("c_%d", time.Now().UnixNano())
	s := open(t, "/tpch/sf1", map[string]string{"query": "SELECT orderkey, comment AS " + marker + " FROM lineitem"}, "", mem)
	splits, _ := s.Splits(context.Background(), partition.Options{By: partition.None})
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := s.Read(ctx, splits[0], []string{"orderkey", marker})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Next() {
		t.Fatalf("no first batch: %v", r.Err())
	}
	cancel()
	for r.Next() {
	}
	if err := r.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("err after cancel = %v, want context.Canceled", err)
	}
	r.Release()
	// The query ends on the server.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int64
		err := admin(t).QueryRow(`SELECT count(*) FROM system.runtime.queries WHERE state NOT IN ('FINISHED', 'FAILED') AND query LIKE '%` + marker + ` FROM lineitem%' AND query NOT LIKE '%system.runtime%'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cancelled query still runs on Trino")
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+3 {
		t.Errorf("goroutines: %d before, %d after cancel", before, after)
	}
}

func TestBadSQLIntegration(t *testing.T) {
	s := open(t, "/tpch/tiny", map[string]string{"query": "SELECT no_such_column FROM orders"}, "", memory.DefaultAllocator)
	_, err := s.Schema(context.Background())
	if !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
	if !strings.Contains(err.Error(), "no_such_column") || !strings.Contains(err.Error(), "cannot be resolved") {
		t.Errorf("error %q lacks Trino's message", err)
	}
	s = open(t, "/tpch/tiny", map[string]string{"table": "no_such_table"}, "", memory.DefaultAllocator)
	if _, err := s.Schema(context.Background()); !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "no_such_table") {
		t.Fatalf("err = %v, want a permanent error naming the table", err)
	}
	s = open(t, "/tpch/tiny", map[string]string{"table": "orders", "partition_column": "comment"}, "", memory.DefaultAllocator)
	if _, err := s.Splits(context.Background(), partition.Options{}); !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("varchar partition column: err = %v, want permanent", err)
	}
}

// TestRegistryIntegration opens the source through the connector registry.
func TestRegistryIntegration(t *testing.T) {
	src, err := connectors.OpenSource(context.Background(), connectors.SourceConfig{Name: "o", URI: server(t) + "/tpch/tiny?table=nation"})
	if err != nil {
		t.Fatal(err)
	}
	as, ok := src.(connectors.ArrowSource)
	if !ok {
		t.Fatalf("%T is not an ArrowSource", src)
	}
	sp, err := as.Splits(context.Background(), partition.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := as.Read(context.Background(), sp[0], []string{"name"})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := conformance.ReadAll(r)
	r.Release()
	if err != nil || len(rows) != 25 {
		t.Fatalf("%d rows, %v; want 25 nations", len(rows), err)
	}
}
