package infer_test

import (
	"context"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/infer"
)

// readCSVBatch reads a fixture CSV of floats ("nan" = missing) as a batch
// of nullable float64 columns, NaN as null.
func readCSVBatch(t *testing.T, path string) arrow.RecordBatch {
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
	fields := make([]arrow.Field, len(recs[0]))
	bs := make([]*array.Float64Builder, len(recs[0]))
	cols := make([]arrow.Array, len(recs[0]))
	for i, h := range recs[0] {
		fields[i] = arrow.Field{Name: h, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
		bs[i] = array.NewFloat64Builder(memory.DefaultAllocator)
	}
	for _, r := range recs[1:] {
		for i, v := range r {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			if math.IsNaN(x) {
				bs[i].AppendNull()
			} else {
				bs[i].Append(x)
			}
		}
	}
	for i, b := range bs {
		cols[i] = b.NewArray()
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(len(recs)-1))
}

func TestMLflowFlavors(t *testing.T) {
	dir := filepath.Join("testdata", "mlflow")
	in := readCSVBatch(t, filepath.Join(dir, "input.csv"))
	want := readCSVBatch(t, filepath.Join(dir, "expected.csv"))
	for _, tc := range []struct{ dir, col string }{{"xgb_json", "xgb"}, {"lgb", "lgb"}} {
		t.Run(tc.dir, func(t *testing.T) {
			// The format is detected from the directory's MLmodel file.
			m, err := infer.Open(infer.Config{Path: filepath.Join(dir, tc.dir)})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			// Bound by name: lgb was trained on a NumPy array and gets its
			// names from the MLflow signature.
			b, err := infer.Bind(m, in.Schema())
			if err != nil {
				t.Fatal(err)
			}
			x := b.Inputs(in)
			defer x.Release()
			out, err := m.Predict(context.Background(), x)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Release()
			got := out.Column(0).(*array.Float64).Float64Values()
			exp := want.Column(want.Schema().FieldIndices(tc.col)[0]).(*array.Float64).Float64Values()
			for i := range exp {
				if math.Abs(got[i]-exp[i]) > 1e-6*math.Max(1, math.Abs(exp[i])) {
					t.Fatalf("row %d: got %v, want %v", i, got[i], exp[i])
				}
			}
		})
	}
}

func TestMLflowErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(p, 0o755)
		if err := os.WriteFile(filepath.Join(p, "MLmodel"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := map[string]struct {
		path string
		is   error
		want string
	}{
		"binary xgboost":  {filepath.Join("testdata", "mlflow", "xgb_default"), infer.ErrUnsupported, `model_format="json"`},
		"sklearn pickle":  {write("sk", "flavors:\n  sklearn: {pickled_model: model.pkl}\n  python_function: {}\n"), infer.ErrUnsupported, "flavors [python_function, sklearn]"},
		"no flavors":      {write("none", "artifact_path: x\n"), infer.ErrCorrupt, "no flavors"},
		"not yaml":        {write("bad", "flavors: [unclosed\n"), infer.ErrCorrupt, "MLmodel"},
		"missing payload": {write("gone", "flavors:\n  lightgbm: {data: model.lgb}\n"), nil, "no such file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := infer.Open(infer.Config{Format: "mlflow", Path: tc.path})
			if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %v containing %q", err, tc.is, tc.want)
			}
		})
	}
}
