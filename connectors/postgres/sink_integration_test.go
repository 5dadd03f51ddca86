package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/connectors/conformance"
	"github.com/liminal-data/liminal/partition"
)

// typedBatch has, for ids, Arrow types that differ from the columns of
// the table TestSinkKeepsTableTypesIntegration creates: int64 for
// integer, float64 for numeric(12,2) and real, a timestamp without zone
// for timestamptz and one with a zone for timestamp.
func typedBatch(ids []int64, tag string) arrow.RecordBatch {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ratio", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
		{Name: "wall", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "label", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	base := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, id := range ids {
		b.Field(0).(*array.Int64Builder).Append(id)
		b.Field(1).(*array.Float64Builder).Append(1.25 * float64(id))
		b.Field(2).(*array.Float64Builder).Append(0.5 * float64(id))
		at := arrow.Timestamp(base.Add(time.Duration(id) * time.Hour).UnixMicro())
		b.Field(3).(*array.TimestampBuilder).Append(at)
		b.Field(4).(*array.TimestampBuilder).Append(at)
		b.Field(5).(*array.StringBuilder).Append(fmt.Sprintf("%s%d", tag, id))
	}
	return b.NewRecordBatch()
}

// typedRow is the row typedBatch writes for id, as the source reads it
// back from the table's own types.
func typedRow(id int64, tag string) []any {
	at := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC).Add(time.Duration(id) * time.Hour)
	return []any{id, fmt.Sprintf("%.2f", 1.25*float64(id)), 0.5 * float64(id),
		at.Format("2006-01-02 15:04:05") + "Z", at.Format("2006-01-02 15:04:05"), fmt.Sprintf("%s%d", tag, id)}
}

// TestSinkKeepsTableTypesIntegration writes, run after run, into a table
// that exists with other types than the Arrow data: the table keeps its
// types in every mode (overwrite included) and the values are cast to
// them. The session runs in a time zone far from UTC: the commit casts
// between timestamp and timestamptz in UTC, as the rest of the connector
// does, not in the server's or the role's TimeZone.
func TestSinkKeepsTableTypesIntegration(t *testing.T) {
	schema := newSchema(t)
	conn := pgConnect(t)
	ctx := context.Background()
	wantTypes := []string{"integer", "numeric(12,2)", "real", "timestamp with time zone", "timestamp without time zone", "character varying(20)"}
	tests := map[string]struct {
		mode connectors.Mode
		keys []string
		want [][]any // after run 1 (ids 1-3, "a") and run 2 (ids 2-4, "b")
	}{
		"append": {mode: connectors.ModeAppend, want: [][]any{
			typedRow(1, "a"), typedRow(2, "a"), typedRow(3, "a"), typedRow(2, "b"), typedRow(3, "b"), typedRow(4, "b")}},
		"upsert": {mode: connectors.ModeUpsert, keys: []string{"id"}, want: [][]any{
			typedRow(1, "a"), typedRow(2, "b"), typedRow(3, "b"), typedRow(4, "b")}},
		"overwrite": {mode: connectors.ModeOverwrite, want: [][]any{
			typedRow(2, "b"), typedRow(3, "b"), typedRow(4, "b")}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			table := "typed_" + name
			pk := ""
			if tc.keys != nil {
				pk = ", PRIMARY KEY (id)"
			}
			pgExec(t, conn, fmt.Sprintf(`CREATE TABLE %s.%s (id integer NOT NULL, price numeric(12,2), ratio real,
				ts timestamptz, wall timestamp, label varchar(20)%s)`, schema, table, pk))
			uri := tableURI(schema, table) + "&TimeZone=America/New_York"
			for i, run := range []struct {
				ids []int64
				tag string
			}{{[]int64{1, 2, 3}, "a"}, {[]int64{2, 3, 4}, "b"}} {
				rec := typedBatch(run.ids, run.tag)
				s := openSink(t, uri, tc.mode, tc.keys)
				r := connectors.Run{ID: fmt.Sprintf("run-%d", i)}
				if err := s.Prepare(ctx, r); err != nil {
					t.Fatal(err)
				}
				w, err := s.Writer(ctx, r, partition.Split{ID: "s-0", Source: "t"}, 1, rec.Schema())
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Write(ctx, rec); err != nil {
					t.Fatal(err)
				}
				rec.Release()
				m, err := w.Close(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Commit(ctx, r, []connectors.Manifest{m}); err != nil {
					t.Fatal(err)
				}
				rows, err := conn.Query(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
					WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, schema+"."+table)
				if err != nil {
					t.Fatal(err)
				}
				types, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(types, wantTypes) {
					t.Fatalf("after run %d the column types are %v, want %v (the table's own)", i+1, types, wantTypes)
				}
			}
			got := readAll(t, openSource(t, tableURI(schema, table), map[string]string{"snapshot": "off"}), nil)
			if d := conformance.Diff(got, tc.want); d != "" {
				t.Fatal(d)
			}
		})
	}
}
