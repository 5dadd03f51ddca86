package checks

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/liminal-data/liminal/spec"
)

// arrowDB runs queries through duckdb-go's Arrow interface (results
// materialized: the checks' results are a few rows).
type arrowDB struct{ conn *sql.Conn }

func (a arrowDB) Query(ctx context.Context, q string) (array.RecordReader, error) {
	var rr array.RecordReader
	err := a.conn.Raw(func(dc any) error {
		ar, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		rr, err = ar.QueryContext(ctx, q)
		return err
	})
	return rr, err
}

// fixture writes the test's Parquet files and returns a DuckDB handle,
// the output expression (orders, over two files) and the tables.
func fixture(t *testing.T) (arrowDB, string, map[string]string) {
	t.Helper()
	sdb, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	conn, err := sdb.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	db := arrowDB{conn}
	dir := t.TempDir()
	a := filepath.Join(dir, "orders-0.parquet")
	b := filepath.Join(dir, "orders-1.parquet")
	customers := filepath.Join(dir, "customers.parquet")
	for _, stmt := range []string{
		// (customer_id, dt) (10, 2024-01-01) is there twice; customer 99
		// does not exist; status "void" is not accepted; row 4 has no
		// customer, row 6 no status.
		`COPY (SELECT * FROM (VALUES
			(1, 10, 'paid', DATE '2024-01-01', 10.5),
			(2, 10, 'paid', DATE '2024-01-01', 3.0),
			(3, 11, 'pending', DATE '2024-01-02', 7.25)
		) AS t(id, customer_id, status, dt, amount)) TO '` + a + `' (FORMAT parquet)`,
		`COPY (SELECT * FROM (VALUES
			(4, NULL, 'paid', DATE '2024-01-02', 1.0),
			(5, 99, 'void', DATE '2024-01-03', 2.0),
			(6, 12, NULL, DATE '2024-01-03', 0.0)
		) AS t(id, customer_id, status, dt, amount)) TO '` + b + `' (FORMAT parquet)`,
		`COPY (SELECT * FROM (VALUES (10, 'ann'), (11, 'bob'), (12, 'cy'), (NULL, 'nobody'))
			AS t(id, name)) TO '` + customers + `' (FORMAT parquet)`,
	} {
		if _, err := conn.ExecContext(context.Background(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	output := "read_parquet(['" + a + "', '" + b + "'])"
	tables := map[string]string{"customers": "read_parquet('" + customers + "')"}
	return db, output, tables
}

func i64(n int64) *int64 { return &n }

func TestRun(t *testing.T) {
	db, output, tables := fixture(t)
	tests := map[string]struct {
		check    spec.Check
		output   string // "" means the orders
		passed   bool
		failures int64
		sample   []string // nil: not compared
		message  string   // exact, unless empty
		errLike  string   // substring of Error; "" means no error
	}{
		"row_count passes": {
			check:   spec.Check{Type: "row_count", Min: i64(1), Max: i64(6)},
			passed:  true,
			sample:  []string{"6"},
			message: "row_count: 6 rows",
		},
		"row_count below min": {
			check:    spec.Check{Type: "row_count", Min: i64(10)},
			failures: 1,
			sample:   []string{"6"},
			message:  "row_count: 6 rows, want at least 10",
		},
		"row_count above max": {
			check:    spec.Check{Type: "row_count", Max: i64(5)},
			failures: 1,
			message:  "row_count: 6 rows, want at most 5",
		},
		"row_count outside range": {
			check:    spec.Check{Name: "size", Type: "row_count", Min: i64(7), Max: i64(9)},
			failures: 1,
			message:  "size: 6 rows, want between 7 and 9",
		},
		"not_null passes": {
			check:   spec.Check{Type: "not_null", Columns: []string{"id", "dt"}},
			passed:  true,
			message: "not_null(id, dt): ok",
		},
		"not_null fails with the whole row": {
			check:    spec.Check{Type: "not_null", Columns: []string{"customer_id"}},
			failures: 1,
			sample:   []string{"{'id': 4, 'customer_id': NULL, 'status': paid, 'dt': 2024-01-02, 'amount': 1.00}"},
		},
		"not_null any of columns": {
			check:    spec.Check{Type: "not_null", Columns: []string{"customer_id", "status"}},
			failures: 2,
		},
		"unique passes": {
			check:  spec.Check{Type: "unique", Columns: []string{"id"}},
			passed: true,
		},
		"unique single column fails": {
			check:    spec.Check{Type: "unique", Columns: []string{"status"}},
			failures: 1,
			sample:   []string{"paid"},
			message:  "unique(status): 1 duplicate key, e.g. paid",
		},
		"unique composite fails": {
			check:    spec.Check{Type: "unique", Columns: []string{"customer_id", "dt"}},
			failures: 1,
			sample:   []string{"(10, 2024-01-01)"},
			message:  "unique(customer_id, dt): 1 duplicate key, e.g. (10, 2024-01-01)",
		},
		"unique composite passes": {
			check:  spec.Check{Type: "unique", Columns: []string{"customer_id", "amount"}},
			passed: true,
		},
		"unique ignores NULL keys": {
			output: "(SELECT * FROM (VALUES (1, NULL), (1, NULL), (NULL, 'a'), (NULL, 'a'), (1, 'a')) AS t(k, v))",
			check:  spec.Check{Type: "unique", Columns: []string{"k", "v"}},
			passed: true,
		},
		"unique composite with a subquery output": {
			output:   "(SELECT * FROM (VALUES (1, 'a'), (1, 'a'), (1, 'b'), (2, 'x'), (2, 'x'), (2, 'x')) AS t(k, v))",
			check:    spec.Check{Type: "unique", Columns: []string{"k", "v"}},
			failures: 2,
			sample:   []string{"(2, x)", "(1, a)"},
		},
		"accepted_values passes, NULL ignored": {
			check:  spec.Check{Type: "accepted_values", Columns: []string{"status"}, Values: []string{"paid", "pending", "void"}},
			passed: true,
		},
		"accepted_values fails": {
			check:    spec.Check{Type: "accepted_values", Columns: []string{"status"}, Values: []string{"paid", "pending"}},
			failures: 1,
			sample:   []string{"void"},
			message:  "accepted_values(status): 1 row with a value not in [paid, pending], e.g. void",
		},
		"accepted_values compares numbers as text": {
			check:    spec.Check{Type: "accepted_values", Columns: []string{"customer_id"}, Values: []string{"10", "11", "12"}},
			failures: 1,
			sample:   []string{"99"},
		},
		"accepted_values counts rows, samples frequent values first": {
			check:    spec.Check{Type: "accepted_values", Columns: []string{"status"}, Values: []string{"x'y"}},
			failures: 5,
			sample:   []string{"paid", "pending", "void"},
			message:  "accepted_values(status): 5 rows with values not in [x'y], e.g. paid, pending, void",
		},
		"relationships fails, warn": {
			check:  spec.Check{Type: "relationships", Columns: []string{"id"}, To: "customers", Field: "id", Severity: "warn"},
			passed: false, failures: 6, // ids 1..6 are not customers
		},
		"relationships fails, NULL ignored": {
			check:    spec.Check{Type: "relationships", Columns: []string{"customer_id"}, To: "customers", Field: "id"},
			failures: 1,
			sample:   []string{"99"},
			message:  "relationships(customer_id): 1 row whose value is missing from customers.id, e.g. 99",
		},
		"relationships to unknown table": {
			check:   spec.Check{Type: "relationships", Columns: []string{"customer_id"}, To: "clients", Field: "id"},
			errLike: `unknown table "clients" (known: customers)`,
		},
		"sql passes": {
			check:   spec.Check{Name: "positive", Type: "sql", SQL: "SELECT * FROM output WHERE amount < 0;"},
			passed:  true,
			message: "positive: ok",
		},
		"sql fails with rows": {
			check:    spec.Check{Type: "sql", SQL: "select id, amount from output where amount < 5 -- small"},
			failures: 4,
			sample:   []string{"{'id': 2, 'amount': 3.00}", "{'id': 4, 'amount': 1.00}", "{'id': 5, 'amount': 2.00}", "{'id': 6, 'amount': 0.00}"},
		},
		"sql joins a table and has its own CTE": {
			check: spec.Check{Type: "sql", SQL: `WITH o AS (SELECT * FROM output)
				SELECT o.id FROM o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.name IS NULL`},
			failures: 2,
			sample:   []string{"{'id': 4}", "{'id': 5}"},
		},
		"unknown column": {
			check:   spec.Check{Type: "unique", Columns: []string{"nope"}, Severity: "warn"},
			errLike: `"nope" not found`,
		},
		"bad sql": {
			check:   spec.Check{Type: "sql", SQL: "SELEC 1"},
			errLike: "syntax error",
		},
		"unknown type": {
			check:   spec.Check{Type: "fresh"},
			errLike: `unknown check type "fresh"`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			out := output
			if tt.output != "" {
				out = tt.output
			}
			rs := Run(context.Background(), db, out, []spec.Check{tt.check}, tables)
			if len(rs) != 1 {
				t.Fatalf("got %d results", len(rs))
			}
			r := rs[0]
			t.Logf("%+v", r)
			if tt.errLike != "" {
				if !strings.Contains(r.Error, tt.errLike) || r.Passed || r.Severity != SeverityError {
					t.Fatalf("want failed, severity error, error like %q; got %+v", tt.errLike, r)
				}
				if strings.Contains(r.Error, "\n") || !strings.HasPrefix(r.Message, r.Name+": ") {
					t.Errorf("error not one readable line: %q / %q", r.Error, r.Message)
				}
				return
			}
			if r.Error != "" {
				t.Fatalf("unexpected error %s", r.Error)
			}
			if r.Passed != tt.passed || r.Failures != tt.failures {
				t.Errorf("passed, failures = %v, %d; want %v, %d", r.Passed, r.Failures, tt.passed, tt.failures)
			}
			if tt.sample != nil && !slices.Equal(r.Sample, tt.sample) {
				t.Errorf("sample = %q, want %q", r.Sample, tt.sample)
			}
			if tt.message != "" && r.Message != tt.message {
				t.Errorf("message = %q, want %q", r.Message, tt.message)
			}
			if r.Name != Name(tt.check) || r.Type != tt.check.Type {
				t.Errorf("name, type = %q, %q", r.Name, r.Type)
			}
		})
	}
}

func TestBlocking(t *testing.T) {
	db, output, tables := fixture(t)
	rs := Run(context.Background(), db, output, []spec.Check{
		{Type: "unique", Columns: []string{"id"}},                                                       // passes
		{Type: "unique", Columns: []string{"status"}, Severity: "warn"},                                 // fails, warn
		{Type: "unique", Columns: []string{"customer_id", "dt"}},                                        // fails, error
		{Type: "not_null", Columns: []string{"missing"}, Severity: "warn"},                              // broken: error
		{Type: "row_count", Min: i64(1)},                                                                // passes
		{Name: "few", Type: "sql", SQL: "SELECT 1 FROM output HAVING count(*) > 100", Severity: "warn"}, // passes
	}, tables)
	var names []string
	for _, r := range Blocking(rs) {
		names = append(names, r.Name)
	}
	if want := []string{"unique(customer_id, dt)", "not_null(missing)"}; !slices.Equal(names, want) {
		t.Errorf("blocking = %q, want %q", names, want)
	}
	names = nil
	for _, r := range Failed(rs) {
		names = append(names, r.Name)
	}
	if want := []string{"unique(status)", "unique(customer_id, dt)", "not_null(missing)"}; !slices.Equal(names, want) {
		t.Errorf("failed = %q, want %q", names, want)
	}
}

func TestCancelled(t *testing.T) {
	db, output, tables := fixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rs := Run(ctx, db, output, []spec.Check{{Type: "row_count", Min: i64(1)}}, tables)
	if rs[0].Passed || rs[0].Error == "" {
		t.Errorf("cancelled check passed: %+v", rs[0])
	}
}

func TestName(t *testing.T) {
	tests := map[string]struct {
		check spec.Check
		want  string
	}{
		"own":     {spec.Check{Name: "x", Type: "unique", Columns: []string{"a"}}, "x"},
		"columns": {spec.Check{Type: "unique", Columns: []string{"a", "b"}}, "unique(a, b)"},
		"none":    {spec.Check{Type: "row_count"}, "row_count"},
	}
	for name, tt := range tests {
		if got := Name(tt.check); got != tt.want {
			t.Errorf("%s: Name = %q, want %q", name, got, tt.want)
		}
	}
}
