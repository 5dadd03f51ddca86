package worker_test

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/coordinator/worker"
	"github.com/liminal-data/liminal/engine"
	"github.com/liminal-data/liminal/infer"
	"github.com/liminal-data/liminal/partition"
	"github.com/liminal-data/liminal/spec"
)

// scoreFixture writes a fixture's input rows as Parquet with small row
// groups (so that several partitions are possible) and an id column.
func scoreFixture(t *testing.T, input, dir string) string {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := filepath.Join(dir, "in")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	// Two files, small row groups: partitions split files and row groups.
	q := `COPY (SELECT * FROM (SELECT row_number() OVER () - 1 AS id, * FROM read_csv('%s', header = true, all_varchar = false,
		nullstr = 'null')) WHERE id %% 2 = %d ORDER BY id) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 16)`
	for i := 0; i < 2; i++ {
		if _, err := db.Exec(fmt.Sprintf(q, input, i, filepath.Join(out, fmt.Sprintf("part-%d.parquet", i)))); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func readExpected(t *testing.T, path string) (header []string, rows [][]float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[1:] {
		row := make([]float64, len(r))
		for i, v := range r {
			if row[i], err = strconv.ParseFloat(v, 64); err != nil {
				t.Fatal(err)
			}
		}
		rows = append(rows, row)
	}
	return recs[0], rows
}

// runScore runs a batch_inference task reading dir/in into dir/out.
func runScore(t *testing.T, eng *engine.Engine, dir, query string, m spec.Model, out spec.Output, o partition.Options) (*coordinator.RunResult, error) {
	t.Helper()
	ctx := context.Background()
	src, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: "t", URI: filepath.Join(dir, "in")})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: "out", URI: filepath.Join(dir, "out"), Mode: connectors.ModeOverwrite})
	if err != nil {
		t.Fatal(err)
	}
	task := &coordinator.Task{Name: "score", Query: query, Sources: map[string]connectors.Source{"t": src},
		Sink: sink, Partition: o, Score: &coordinator.Score{Model: m, Output: out}}
	w := worker.New(eng)
	defer w.Close()
	co := coordinator.New(w, coordinator.Options{})
	res := co.Run(ctx, "run-1", "", []*coordinator.Task{task})
	if res.Status != coordinator.StatusSucceeded {
		return res, fmt.Errorf("%s", res.Error)
	}
	return res, nil
}

// TestScoreMatchesReference scores every XGBoost and LightGBM fixture
// through the whole path (Parquet scan, partitions, scoring, Parquet sink)
// and compares with the reference library's own predictions, at several
// partition counts.
func TestScoreMatchesReference(t *testing.T) {
	eng, err := engine.New(engine.Options{Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	var cases []string
	for _, lib := range []string{"xgboost", "lightgbm"} {
		ms, _ := filepath.Glob(filepath.Join("..", "..", "infer", "testdata", lib, "*.model.*"))
		for _, m := range ms {
			if _, err := os.Stat(strings.Split(m, ".model.")[0] + ".expected.csv"); err == nil {
				cases = append(cases, m)
			}
		}
	}
	if len(cases) < 10 {
		t.Fatalf("found %d model fixtures", len(cases))
	}
	for _, modelPath := range cases {
		base := strings.Split(modelPath, ".model.")[0]
		name := filepath.Base(filepath.Dir(base)) + "/" + filepath.Base(base)
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			abs, _ := filepath.Abs(modelPath)
			absIn, _ := filepath.Abs(base + ".input.csv")
			scoreFixture(t, absIn, dir)
			header, want := readExpected(t, base+".expected.csv")
			nprob := 0
			for _, h := range header {
				if strings.HasPrefix(h, "p") {
					nprob++
				}
			}
			m, err := infer.Open(infer.Config{Path: abs})
			if err != nil {
				t.Fatal(err)
			}
			head, _ := os.ReadFile(absIn)
			inCols := strings.Split(strings.SplitN(string(head), "\n", 2)[0], ",")
			cols := []string{"id"}
			for i, f := range m.InputSchema().Fields() {
				cols = append(cols, fmt.Sprintf("%q AS %q", inCols[i], f.Name))
			}
			query := "SELECT " + strings.Join(cols, ", ") + " FROM t"
			for _, parts := range []int{1, 3, 7} {
				o := partition.Options{By: partition.None}
				if parts > 1 {
					o = partition.Options{TargetRows: int64(len(want)/parts + 1)}
				}
				// The query names the columns as the model does; only the
				// id is kept next to the predictions.
				res, err := runScore(t, eng, dir, query, spec.Model{Path: abs}, spec.Output{Columns: []string{"id"}}, o)
				if err != nil {
					t.Fatalf("%d partitions: %v", parts, err)
				}
				if n := res.Tasks[0].Partitions; (parts == 1) != (n == 1) {
					t.Fatalf("asked for %d partitions, ran %d", parts, n)
				}
				got := readOrdered(t, filepath.Join(dir, "out"))
				if len(got) != len(want) {
					t.Fatalf("%d partitions: %d rows, want %d", parts, len(got), len(want))
				}
				for i, row := range got {
					if row[0].(int64) != int64(i) {
						t.Fatalf("row %d has id %v", i, row[0])
					}
					if nprob == 1 {
						checkClose(t, i, "prediction", row[1].(float64), want[i][0])
						continue
					}
					// multi-class: argmax then one probability per class
					best := 0
					for k := 0; k < nprob; k++ {
						checkClose(t, i, fmt.Sprintf("probability_%d", k), row[2+k].(float64), want[i][k])
						if want[i][k] > want[i][best] {
							best = k
						}
					}
					if row[1].(int64) != int64(best) {
						t.Fatalf("row %d: class %v, want %d", i, row[1], best)
					}
				}
			}
		})
	}
}

func checkClose(t *testing.T, row int, col string, got, want float64) {
	t.Helper()
	if got == want || math.Abs(got-want) <= 1e-6*math.Max(1, math.Abs(want)) {
		return
	}
	t.Fatalf("row %d %s: got %v, want %v", row, col, got, want)
}

func readOrdered(t *testing.T, dir string) [][]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return queryRows(t, db, "SELECT * FROM read_parquet(['"+strings.Join(files, "','")+"']) ORDER BY id")
}
