package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/connectors/conformance"
	"github.com/liminal-data/liminal/partition"
)

// events makes a table with integer, date, timestamp and timestamptz
// columns, NULLs in every one but id, and a gap in the ids.
func events(t *testing.T, schema string, rows int) string {
	t.Helper()
	conn := pgConnect(t)
	name := fmt.Sprintf("events_%d", tableSeq.Add(1))
	pgExec(t, conn, fmt.Sprintf(`CREATE TABLE %s.%s AS SELECT
		CASE WHEN i > %d / 2 THEN i + 1000000 ELSE i END::int8 AS id,
		CASE WHEN i %% 11 = 0 THEN NULL ELSE (i * 7919) %% 97 END::int4 AS grp,
		CASE WHEN i %% 13 = 0 THEN NULL ELSE DATE '2024-01-01' + (i %% 400) END AS d,
		CASE WHEN i %% 17 = 0 THEN NULL ELSE TIMESTAMP '2024-01-01' + (i * 7777) * INTERVAL '1 second' END AS ts,
		CASE WHEN i %% 19 = 0 THEN NULL ELSE TIMESTAMPTZ '2024-01-01 00:00:00+00' + (i * 333) * INTERVAL '1 second' END AS tstz,
		CASE WHEN i %% 5 = 0 THEN NULL ELSE (i * 1.5)::numeric(12,2) END AS amount,
		'row ' || i AS label
		FROM generate_series(1, %d) AS g(i)`, schema, name, rows, rows))
	pgExec(t, conn, fmt.Sprintf("ANALYZE %s.%s", schema, name))
	return name
}

func readSplits(t *testing.T, src *Source, o partition.Options) ([][]any, int) {
	t.Helper()
	ctx := context.Background()
	splits, err := src.Splits(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var all [][]any
	for _, sp := range splits {
		r, err := src.Read(ctx, sp, nil)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := conformance.ReadAll(r)
		r.Release()
		if err != nil {
			t.Fatalf("split %s (%s): %v", sp.ID, sp.Locator, err)
		}
		all = append(all, rows...)
	}
	return all, len(splits)
}

func TestPartitionedReadsIntegration(t *testing.T) {
	schema := newSchema(t)
	table := events(t, schema, 5000)
	whole := readAll(t, openSource(t, tableURI(schema, table), map[string]string{"snapshot": "off"}), nil)
	if len(whole) != 5000 {
		t.Fatalf("%d rows", len(whole))
	}
	tests := map[string]map[string]string{
		"ctid":                {},
		"int":                 {"partition_column": "id"},
		"int with nulls":      {"partition_column": "grp"},
		"date":                {"partition_column": "d"},
		"timestamp":           {"partition_column": "ts"},
		"timestamptz":         {"partition_column": "tstz"},
		"numeric":             {"partition_column": "amount"},
		"int narrow bounds":   {"partition_column": "id", "lower_bound": "1000", "upper_bound": "2000"},
		"date bounds":         {"partition_column": "d", "lower_bound": "2024-03-01", "upper_bound": "2024-06-01"},
		"timestamp bounds":    {"partition_column": "ts", "lower_bound": "2024-02-01 00:00:00", "upper_bound": "2024-03-01T00:00:00Z"},
		"bounds outside data": {"partition_column": "id", "lower_bound": "-100", "upper_bound": "-50"},
	}
	for name, opts := range tests {
		for _, n := range []int{1, 2, 3, 7, 16} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				o := map[string]string{"partitions": fmt.Sprint(n)}
				for k, v := range opts {
					o[k] = v
				}
				src := openSource(t, tableURI(schema, table), o)
				got, splits := readSplits(t, src, partition.Options{})
				if n > 1 && splits < 2 {
					t.Errorf("%d splits for partitions=%d", splits, n)
				}
				if d := conformance.Diff(got, whole); d != "" {
					t.Fatal(d)
				}
			})
		}
	}
	t.Run("query source", func(t *testing.T) {
		uri := pgURL + "?query=" + strings.ReplaceAll(fmt.Sprintf("SELECT * FROM %s.%s WHERE id > 100", schema, table), " ", "+")
		src := openSource(t, uri, map[string]string{"partition_column": "id", "partitions": "4"})
		got, splits := readSplits(t, src, partition.Options{})
		want := readAll(t, openSource(t, uri, nil), nil)
		if splits != 4 || len(want) != 4900 {
			t.Fatalf("%d splits, %d rows", splits, len(want))
		}
		if d := conformance.Diff(got, want); d != "" {
			t.Fatal(d)
		}
	})
	t.Run("target rows", func(t *testing.T) {
		src := openSource(t, tableURI(schema, table), nil)
		got, splits := readSplits(t, src, partition.Options{TargetRows: 1000})
		if splits < 3 {
			t.Errorf("%d ctid splits for 5000 rows at 1000 per split", splits)
		}
		if d := conformance.Diff(got, whole); d != "" {
			t.Fatal(d)
		}
	})
}

func TestSnapshotConsistencyIntegration(t *testing.T) {
	schema := newSchema(t)
	table := events(t, schema, 3000)
	ctx := context.Background()
	for name, opts := range map[string]map[string]string{
		"range": {"partition_column": "id", "partitions": "4"},
		"ctid":  {"partitions": "4"},
	} {
		t.Run(name, func(t *testing.T) {
			src := openSource(t, tableURI(schema, table), opts)
			before := readAll(t, openSource(t, tableURI(schema, table), map[string]string{"snapshot": "off"}), nil)
			splits, err := src.Splits(ctx, partition.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if splits[0].Attrs[attrSnapshot] == "" {
				t.Fatal("no snapshot exported")
			}
			var got [][]any
			for i, sp := range splits {
				r, err := src.Read(ctx, sp, nil)
				if err != nil {
					t.Fatal(err)
				}
				rows, err := conformance.ReadAll(r)
				r.Release()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rows...)
				if i == 0 {
					// A concurrent writer commits rows into every range and
					// deletes some, while the other splits are still unread.
					c := pgConnect(t)
					pgExec(t, c, fmt.Sprintf("INSERT INTO %s.%s (id, grp, label) SELECT i, 1, 'new' FROM generate_series(1, 3000000, 1000) g(i)", schema, table))
					pgExec(t, c, fmt.Sprintf("DELETE FROM %s.%s WHERE id %% 3 = 0 AND label <> 'new'", schema, table))
				}
			}
			if d := conformance.Diff(got, before); d != "" {
				t.Fatalf("splits did not read one snapshot: %s", d)
			}
			pgExec(t, pgConnect(t), fmt.Sprintf("DELETE FROM %s.%s WHERE label = 'new'", schema, table))
		})
	}
	t.Run("fallback and required", func(t *testing.T) {
		src := openSource(t, tableURI(schema, table), map[string]string{"partitions": "2"})
		splits, err := src.Splits(ctx, partition.Options{})
		if err != nil {
			t.Fatal(err)
		}
		src.Close() // the exporting transaction ends
		r, err := src.Read(ctx, splits[0], nil)
		if err != nil {
			t.Fatalf("snapshot=auto must fall back: %v", err)
		}
		if _, err := conformance.ReadAll(r); err != nil {
			t.Fatal(err)
		}
		r.Release()
		req := openSource(t, tableURI(schema, table), map[string]string{"partitions": "2", "snapshot": "required"})
		if _, err := req.Read(ctx, splits[0], nil); !errors.Is(err, errSnapshotGone) || !errors.Is(err, connectors.ErrPermanent) {
			t.Fatalf("snapshot=required with a released snapshot: %v", err)
		}
	})
}

func TestSecretsIntegration(t *testing.T) {
	schema := newSchema(t)
	ctx := context.Background()
	withPw := strings.Replace(pgURL, "liminal@", "liminal:"+pgPassword+"@", 1)
	check := func(what, s string) {
		t.Helper()
		if pgPassword != "" && strings.Contains(s, pgPassword) {
			t.Errorf("%s shows the password: %s", what, s)
		}
	}
	src := openSource(t, tableURI(schema, "missing"), nil)
	check("source Describe", src.Describe())
	_, err := src.Schema(ctx)
	if err == nil || !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("missing table: %v", err)
	}
	check("missing-table error", err.Error())

	s2, err := newSource(connectors.SourceConfig{URI: withPw + "?table=" + schema + ".missing"})
	if err != nil {
		t.Fatal(err)
	}
	check("Describe of a URI with a password", s2.Describe())
	_, err = s2.Schema(ctx)
	check("error of a URI with a password", fmt.Sprint(err))
	if !strings.Contains(fmt.Sprint(err), "missing") {
		t.Errorf("error does not name the table: %v", err)
	}

	sink := openSink(t, tableURI(schema, "out"), connectors.ModeAppend, nil)
	check("sink Describe", sink.Describe())

	bad, err := newSource(connectors.SourceConfig{URI: tableURI(schema, "x"), Secret: pgPassword + "-wrong"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Schema(ctx)
	if err == nil || !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("wrong password: %v", err)
	}
	check("wrong-password error", err.Error())
	if strings.Contains(err.Error(), pgPassword+"-wrong") {
		t.Errorf("wrong-password error shows the secret: %v", err)
	}
}
