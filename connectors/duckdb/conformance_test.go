package duckdb

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/connectors/conformance"
	"github.com/liminal-data/liminal/partition"
)

var seq atomic.Int64

// load writes rec into a new table of the file through the sink.
func load(t *testing.T, path, table string, rec arrow.RecordBatch) {
	t.Helper()
	ctx := context.Background()
	s, err := newSink(connectors.SinkConfig{URI: "duckdb://" + path + "?table=" + table, Mode: connectors.ModeAppend})
	if err != nil {
		t.Fatal(err)
	}
	run := connectors.Run{ID: "load"}
	if err := s.Prepare(ctx, run); err != nil {
		t.Fatal(err)
	}
	w, err := s.Writer(ctx, run, partition.Split{ID: "0"}, 1, rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	m, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, run, []connectors.Manifest{m}); err != nil {
		t.Fatal(err)
	}
}

func exec(t *testing.T, path, q string) {
	t.Helper()
	db, done, err := acquire(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if _, err := db.Exec("USE " + catalog + "; " + q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

type stmts struct {
	mu   sync.Mutex
	list []string
}

func (s *stmts) add(q string) { s.mu.Lock(); s.list = append(s.list, q); s.mu.Unlock() }
func (s *stmts) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.list
	s.list = nil
	return l
}

func readAll(t testing.TB, src connectors.ArrowSource, cols []string) [][]any {
	t.Helper()
	ctx := context.Background()
	splits, err := src.Splits(ctx, partition.Options{By: partition.None})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]any
	for _, sp := range splits {
		r, err := src.Read(ctx, sp, cols)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := conformance.ReadAll(r)
		r.Release()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rows...)
	}
	return out
}

func TestSourceConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "src.duckdb")
	var st stmts
	conformance.RunSource(t, conformance.SourceHarness{
		Load: func(t *testing.T, rec arrow.RecordBatch, opts map[string]string) connectors.ArrowSource {
			name := fmt.Sprintf("src_%d", seq.Add(1))
			load(t, path, name, rec)
			s, err := newSource(connectors.SourceConfig{URI: "duckdb://" + path + "?table=" + name, Options: opts})
			if err != nil {
				t.Fatal(err)
			}
			s.onStatement = st.add
			return s
		},
		Variants: map[string]map[string]string{
			"partitions=5": {"partitions": "5"},
			"small pages":  {"page_rows": "7"},
		},
		Statements: st.take,
		Types: func(t *testing.T) (connectors.ArrowSource, []conformance.TypeColumn) {
			name := fmt.Sprintf("types_%d", seq.Add(1))
			exec(t, path, fmt.Sprintf(`CREATE TABLE %s (c_tinyint TINYINT, c_smallint SMALLINT, c_int INTEGER, c_bigint BIGINT,
				c_ubigint UBIGINT, c_float FLOAT, c_double DOUBLE, c_dec DECIMAL(12,3), c_bool BOOLEAN, c_varchar VARCHAR,
				c_blob BLOB, c_date DATE, c_ts TIMESTAMP, c_tstz TIMESTAMPTZ, c_uuid UUID, c_int_list INTEGER[],
				c_str_list VARCHAR[], c_time TIME);
				INSERT INTO %s VALUES
				(1, 2, 3, 4, 5, 1.5, 2.25, 123.45, true, 'ü', '\x00\xff'::BLOB, '2024-02-29', '2024-01-02 03:04:05.123456',
				 '2024-01-02 03:04:05+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', [1, NULL, 3], ['x', 'y'], '12:34:56.5'),
				(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
				(-128, -32768, -2147483648, -9223372036854775808, 18446744073709551615, '-inf', 'nan', -99999.999, false, '',
				 ''::BLOB, '1900-01-01', '1970-01-01', '1999-12-31 23:59:59.999999+00', '00000000-0000-0000-0000-000000000000',
				 [], [NULL], '00:00:00')`, name, name))
			s, err := newSource(connectors.SourceConfig{URI: "duckdb://" + path + "?table=" + name})
			if err != nil {
				t.Fatal(err)
			}
			str := arrow.BinaryTypes.String
			return s, []conformance.TypeColumn{
				conformance.Col("c_tinyint", "TINYINT", arrow.PrimitiveTypes.Int8, []any{int64(1), nil, int64(-128)}),
				conformance.Col("c_smallint", "SMALLINT", arrow.PrimitiveTypes.Int16, []any{int64(2), nil, int64(-32768)}),
				conformance.Col("c_int", "INTEGER", arrow.PrimitiveTypes.Int32, []any{int64(3), nil, int64(-2147483648)}),
				conformance.Col("c_bigint", "BIGINT", arrow.PrimitiveTypes.Int64, []any{int64(4), nil, int64(-9223372036854775808)}),
				conformance.Col("c_ubigint", "UBIGINT", arrow.PrimitiveTypes.Uint64, []any{uint64(5), nil, uint64(18446744073709551615)}),
				conformance.Col("c_float", "FLOAT", arrow.PrimitiveTypes.Float32, []any{1.5, nil, negInf()}),
				conformance.Col("c_double", "DOUBLE", arrow.PrimitiveTypes.Float64, []any{2.25, nil, nan()}),
				conformance.Col("c_dec", "DECIMAL(12,3)", &arrow.Decimal128Type{Precision: 12, Scale: 3}, []any{"123.450", nil, "-99999.999"}),
				conformance.Col("c_bool", "BOOLEAN", arrow.FixedWidthTypes.Boolean, []any{true, nil, false}),
				conformance.Col("c_varchar", "VARCHAR", str, []any{"ü", nil, ""}),
				conformance.Col("c_blob", "BLOB", arrow.BinaryTypes.Binary, []any{[]byte{0, 255}, nil, []byte{}}),
				conformance.Col("c_date", "DATE", arrow.FixedWidthTypes.Date32, []any{"2024-02-29", nil, "1900-01-01"}),
				conformance.Col("c_ts", "TIMESTAMP", &arrow.TimestampType{Unit: arrow.Microsecond}, []any{"2024-01-02 03:04:05.123456", nil, "1970-01-01 00:00:00"}),
				conformance.Col("c_tstz", "TIMESTAMPTZ", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, []any{"2024-01-02 01:04:05Z", nil, "1999-12-31 23:59:59.999999Z"}),
				conformance.Col("c_uuid", "UUID", str, []any{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", nil, "00000000-0000-0000-0000-000000000000"}),
				conformance.Col("c_int_list", "INTEGER[]", arrow.ListOf(arrow.PrimitiveTypes.Int32), []any{[]any{int64(1), nil, int64(3)}, nil, []any{}}),
				conformance.Col("c_str_list", "VARCHAR[]", arrow.ListOf(str), []any{[]any{"x", "y"}, nil, []any{nil}}),
				conformance.Col("c_time", "TIME", arrow.FixedWidthTypes.Time64us, []any{"12:34:56.5", nil, "00:00:00"}),
			}
		},
	})
}

func TestSinkConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.duckdb")
	open := func(t *testing.T, target string, mode connectors.Mode, keys []string) connectors.ArrowSink {
		s, err := newSink(connectors.SinkConfig{URI: "duckdb://" + path + "?table=" + target, Mode: mode, KeyColumns: keys})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	conformance.RunSink(t, conformance.SinkHarness{
		Open: open,
		Read: func(t *testing.T, target string, cols []string) ([][]any, bool) {
			db, done, err := acquire(path, false)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			err = db.QueryRow("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", target).Scan(&n)
			done()
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return nil, false
			}
			s, err := newSource(connectors.SourceConfig{URI: "duckdb://" + path + "?table=" + target})
			if err != nil {
				t.Fatal(err)
			}
			return readAll(t, s, cols), true
		},
		Staging: func(t *testing.T, target string) []string {
			db, done, err := acquire(path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer done()
			rows, err := db.Query("SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, '_liminal_stage_')")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var s string
				_ = rows.Scan(&s)
				out = append(out, s)
			}
			return out
		},
		Modes: []connectors.Mode{connectors.ModeOverwrite, connectors.ModeError},
	})
}

var _ = array.NewRecordReader

func negInf() float64 { return math.Inf(-1) }
func nan() float64    { return math.NaN() }
