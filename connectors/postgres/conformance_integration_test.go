package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/connectors/conformance"
)

var tableSeq atomic.Int64

func TestSourceConformanceIntegration(t *testing.T) {
	schema := newSchema(t)
	conn := pgConnect(t)
	var stmts statements
	conformance.RunSource(t, conformance.SourceHarness{
		Load: func(t *testing.T, rec arrow.RecordBatch, opts map[string]string) connectors.ArrowSource {
			name := fmt.Sprintf("src_%d", tableSeq.Add(1))
			loadTable(t, conn, schema, name, rec)
			src := openSource(t, tableURI(schema, name), opts)
			src.onStatement = stmts.add
			return src
		},
		Variants: map[string]map[string]string{
			"range id":             {"partition_column": "id"},
			"range grp (nulls)":    {"partition_column": "grp"},
			"range amount (float)": {"partition_column": "amount"},
			"range bounds":         {"partition_column": "id", "lower_bound": "100", "upper_bound": "900"},
			"partitions=5":         {"partitions": "5"},
			"small batches":        {"batch_rows": "7"},
		},
		Statements: stmts.take,
		Types: func(t *testing.T) (connectors.ArrowSource, []conformance.TypeColumn) {
			name := fmt.Sprintf("types_%d", tableSeq.Add(1))
			pgExec(t, conn, fmt.Sprintf(`CREATE TABLE %[1]s.%[2]s (c_int2 int2, c_int4 int4, c_int8 int8, c_float4 float4,
				c_float8 float8, c_num numeric(12,3), c_num_unc numeric, c_bool bool, c_text text, c_varchar varchar(10),
				c_char char(3), c_bytea bytea, c_date date, c_ts timestamp, c_tstz timestamptz, c_uuid uuid, c_json json,
				c_jsonb jsonb, c_int_arr int4[], c_text_arr text[], c_interval interval, c_time time);
				INSERT INTO %[1]s.%[2]s VALUES
				(1, 1, 1, 1.5, 2.25, 123.45, 1.23456789012, true, 'text', 'vc', 'ab', '\x00ff', '2024-02-29',
				 '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
				 '{"a":1}', '{"b": [1, 2]}', ARRAY[1, NULL, 3], ARRAY['x', 'y'], '1 day 02:00:00', '12:34:56.5'),
				(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
				 NULL, NULL, NULL, NULL),
				(-32768, -2147483648, -9223372036854775808, '-Infinity', 'NaN', -99999.999, -0.0000000004,
				 false, '', 'ü', 'x', '', '1900-01-01', '1970-01-01 00:00:00', '1999-12-31 23:59:59.999999+00',
				 '00000000-0000-0000-0000-000000000000', '[]', '{}', '{}', ARRAY[NULL]::text[], '-3 mons', '00:00:00')`,
				schema, name))
			src := openSource(t, tableURI(schema, name), nil)
			ts := &arrow.TimestampType{Unit: arrow.Microsecond}
			tstz := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
			str := arrow.BinaryTypes.String
			return src, []conformance.TypeColumn{
				conformance.Col("c_int2", "int2", arrow.PrimitiveTypes.Int16, []any{int64(1), nil, int64(-32768)}),
				conformance.Col("c_int4", "int4", arrow.PrimitiveTypes.Int32, []any{int64(1), nil, int64(-2147483648)}),
				conformance.Col("c_int8", "int8", arrow.PrimitiveTypes.Int64, []any{int64(1), nil, int64(-9223372036854775808)}),
				conformance.Col("c_float4", "float4", arrow.PrimitiveTypes.Float32, []any{1.5, nil, negInf()}),
				conformance.Col("c_float8", "float8", arrow.PrimitiveTypes.Float64, []any{2.25, nil, nan()}),
				conformance.Col("c_num", "numeric(12,3)", &arrow.Decimal128Type{Precision: 12, Scale: 3}, []any{"123.450", nil, "-99999.999"}),
				conformance.Col("c_num_unc", "numeric", &arrow.Decimal128Type{Precision: 38, Scale: 9}, []any{"1.234567890", nil, "0.000000000"}),
				conformance.Col("c_bool", "bool", arrow.FixedWidthTypes.Boolean, []any{true, nil, false}),
				conformance.Col("c_text", "text", str, []any{"text", nil, ""}),
				conformance.Col("c_varchar", "varchar(10)", str, []any{"vc", nil, "ü"}),
				conformance.Col("c_char", "char(3)", str, []any{"ab ", nil, "x  "}),
				conformance.Col("c_bytea", "bytea", arrow.BinaryTypes.Binary, []any{[]byte{0, 255}, nil, []byte{}}),
				conformance.Col("c_date", "date", arrow.FixedWidthTypes.Date32, []any{"2024-02-29", nil, "1900-01-01"}),
				conformance.Col("c_ts", "timestamp", ts, []any{"2024-01-02 03:04:05.123456", nil, "1970-01-01 00:00:00"}),
				conformance.Col("c_tstz", "timestamptz", tstz, []any{"2024-01-02 01:04:05Z", nil, "1999-12-31 23:59:59.999999Z"}),
				conformance.Col("c_uuid", "uuid", str, []any{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", nil, "00000000-0000-0000-0000-000000000000"}),
				conformance.Col("c_json", "json", str, []any{`{"a":1}`, nil, "[]"}),
				conformance.Col("c_jsonb", "jsonb", str, []any{`{"b": [1, 2]}`, nil, "{}"}),
				conformance.Col("c_int_arr", "int4[]", arrow.ListOf(arrow.PrimitiveTypes.Int32), []any{[]any{int64(1), nil, int64(3)}, nil, []any{}}),
				conformance.Col("c_text_arr", "text[]", arrow.ListOf(str), []any{[]any{"x", "y"}, nil, []any{nil}}),
				conformance.Col("c_interval", "interval (as text)", str, []any{"1 day 02:00:00", nil, "-3 mons"}),
				conformance.Col("c_time", "time", arrow.FixedWidthTypes.Time64us, []any{"12:34:56.5", nil, "00:00:00"}),
			}
		},
	})
}

func TestSinkConformanceIntegration(t *testing.T) {
	schema := newSchema(t)
	conn := pgConnect(t)
	conformance.RunSink(t, conformance.SinkHarness{
		Open: func(t *testing.T, target string, mode connectors.Mode, keys []string) connectors.ArrowSink {
			return openSink(t, tableURI(schema, target), mode, keys)
		},
		Read: func(t *testing.T, target string, cols []string) ([][]any, bool) {
			var reg *string
			if err := conn.QueryRow(context.Background(), "SELECT to_regclass($1)::text", schema+"."+target).Scan(&reg); err != nil {
				t.Fatal(err)
			}
			if reg == nil {
				return nil, false
			}
			src := openSource(t, tableURI(schema, target), map[string]string{"snapshot": "off"})
			return readAll(t, src, cols), true
		},
		Staging: func(t *testing.T, target string) []string {
			rows, err := conn.Query(context.Background(), `SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = $1 AND (starts_with(relname, '_liminal_stage_') OR starts_with(relname, '_liminal_new_') OR starts_with(relname, '_liminal_old_'))`, schema)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				out = append(out, s)
			}
			return out
		},
		Modes: []connectors.Mode{connectors.ModeOverwrite, connectors.ModeUpsert, connectors.ModeError},
	})
}
