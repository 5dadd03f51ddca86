package onnx

import (
	"context"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/infer"
)

// Fixtures in testdata are made by make_fixtures.py (see VERSION):
// NAME.onnx, NAME.input.csv, NAME.expected.csv with "ort:COL" (onnxruntime's
// Python session) and "sk:COL" (scikit-learn) columns.
//
// Tolerances, relative to max(1, |want|): against onnxruntime's Python
// session 1e-6 (the same library and kernels: in practice the values are
// identical). onnxruntime computes a batch of one row with other kernels
// (GEMV) than larger batches, which moves float32 results by up to ~1e-6
// relative to the terms summed, so batch-1 predictions are compared with
// the Python session run one row at a time ("ort1:" columns). Against
// scikit-learn, which computes in float64 while the ONNX graphs compute in
// float32, 1e-5 (probabilities differ by at most 3.5e-7), except for the
// regressor: its terms are ~100 (make_regression coefficients on
// standardized features), so float32 sums are off by up to 3.5e-5 absolute
// even where the prediction is near 0; it gets 1e-4.
const (
	tolORT = 1e-6
	tolSK  = 1e-5
)

var tolSKFixture = map[string]float64{"regressor": 1e-4}

// needRuntime loads libonnxruntime or fails the test; LIMINAL_SKIP_ONNX=1
// turns the failure into a skip.
func needRuntime(t testing.TB) {
	t.Helper()
	if _, _, err := LoadRuntime(""); err != nil {
		if os.Getenv("LIMINAL_SKIP_ONNX") == "1" {
			t.Skipf("LIMINAL_SKIP_ONNX=1: %v", err)
		}
		t.Fatalf("%v\n(set LIMINAL_ONNXRUNTIME_LIB=$(scripts/onnxruntime.sh), or LIMINAL_SKIP_ONNX=1 to skip the ONNX tests)", err)
	}
}

func openFixture(t testing.TB, name string, mod func(*infer.Config)) infer.Model {
	t.Helper()
	needRuntime(t)
	cfg := infer.Config{Format: "onnx", Path: name + ".onnx", Dir: "testdata"}
	if mod != nil {
		mod(&cfg)
	}
	m, err := infer.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func readCSV(t testing.TB, path string) (header []string, rows [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return all[0], all[1:]
}

// inputBatch reads NAME.input.csv into a record typed by the model's input
// schema ("nan" becomes null); wide turns float32 columns into float64.
func inputBatch(t testing.TB, m infer.Model, name string, wide bool) arrow.RecordBatch {
	t.Helper()
	header, rows := readCSV(t, filepath.Join("testdata", name+".input.csv"))
	want := m.InputSchema()
	fields := make([]arrow.Field, len(header))
	cols := make([]arrow.Array, len(header))
	for c, h := range header {
		idx := want.FieldIndices(h)
		if len(idx) == 0 {
			t.Fatalf("input column %q is not a model input (%v)", h, want)
		}
		typ := want.Field(idx[0]).Type
		if wide && typ.ID() == arrow.FLOAT32 {
			typ = arrow.PrimitiveTypes.Float64
		}
		fields[c] = arrow.Field{Name: h, Type: typ, Nullable: true}
		b := array.NewBuilder(memory.DefaultAllocator, typ)
		for _, r := range rows {
			s := r[c]
			if s == "nan" {
				b.AppendNull()
				continue
			}
			switch bb := b.(type) {
			case *array.Float32Builder:
				v, err := strconv.ParseFloat(s, 32)
				if err != nil {
					t.Fatal(err)
				}
				bb.Append(float32(v))
			case *array.Float64Builder:
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					t.Fatal(err)
				}
				bb.Append(v)
			case *array.Int64Builder:
				v, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				bb.Append(v)
			case *array.StringBuilder:
				bb.Append(s)
			default:
				t.Fatalf("column %q: type %s", h, typ)
			}
		}
		cols[c] = b.NewArray()
		b.Release()
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(len(rows)))
	for _, a := range cols {
		a.Release()
	}
	return rec
}

// expected reads NAME.expected.csv: prefix ("ort" or "sk") -> column ->
// values.
func expected(t testing.TB, name string) map[string]map[string][]float64 {
	t.Helper()
	header, rows := readCSV(t, filepath.Join("testdata", name+".expected.csv"))
	out := map[string]map[string][]float64{}
	for c, h := range header {
		src, col, ok := strings.Cut(h, ":")
		if !ok {
			t.Fatalf("expected column %q", h)
		}
		if out[src] == nil {
			out[src] = map[string][]float64{}
		}
		vals := make([]float64, len(rows))
		for i, r := range rows {
			v, err := strconv.ParseFloat(r[c], 64)
			if err != nil {
				t.Fatal(err)
			}
			vals[i] = v
		}
		out[src][col] = vals
	}
	return out
}

// predictAll scores rec in batches of size rows through a Binding, as the
// engine would, and concatenates each output column as float64.
func predictAll(t testing.TB, m infer.Model, rec arrow.RecordBatch, size int) map[string][]float64 {
	t.Helper()
	bind, err := infer.Bind(m, rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	n := int(rec.NumRows())
	for start := 0; start < n; start += size {
		end := min(n, start+size)
		part := rec.NewSlice(int64(start), int64(end))
		in := bind.Inputs(part)
		res, err := m.Predict(context.Background(), in)
		in.Release()
		part.Release()
		if err != nil {
			t.Fatal(err)
		}
		if !res.Schema().Equal(m.OutputSchema()) {
			t.Fatalf("output schema %v, want %v", res.Schema(), m.OutputSchema())
		}
		if int(res.NumRows()) != end-start {
			t.Fatalf("%d output rows for %d inputs", res.NumRows(), end-start)
		}
		for i, f := range res.Schema().Fields() {
			switch a := res.Column(i).(type) {
			case *array.Float64:
				out[f.Name] = append(out[f.Name], a.Float64Values()...)
			case *array.Int64:
				for _, v := range a.Int64Values() {
					out[f.Name] = append(out[f.Name], float64(v))
				}
			default:
				t.Fatalf("column %q: %T", f.Name, a)
			}
		}
		res.Release()
	}
	return out
}

func assertClose(t *testing.T, what string, got, want []float64, tol float64, exact bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		ok := got[i] == want[i]
		if !exact {
			ok = math.Abs(got[i]-want[i]) <= tol*max(1, math.Abs(want[i]))
		}
		if !ok {
			if bad < 5 {
				t.Errorf("%s row %d: got %v want %v (diff %g)", what, i, got[i], want[i], got[i]-want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(want))
	}
}

var fixtureNames = []string{"logreg_multiclass", "binary_gb", "regressor", "columns", "mlp", "mlp_batch1"}

// wantInputs are the input schemas the fixtures must get (names from
// metadata, f0.., or the per-column inputs).
var wantInputs = map[string]string{
	"logreg_multiclass": "sepal_length:float32,sepal_width:float32,petal_length:float32,petal_width:float32",
	"binary_gb":         "f0:float32,f1:float32,f2:float32,f3:float32,f4:float32,f5:float32",
	"regressor":         "age:float32,income:float32,tenure:float32,score:float32,balance:float32",
	"columns":           "age:float32,visits:int64,city:utf8",
	"mlp":               "f0:float32,f1:float32,f2:float32,f3:float32,f4:float32,f5:float32,f6:float32,f7:float32",
	"mlp_batch1":        "f0:float32,f1:float32,f2:float32,f3:float32,f4:float32,f5:float32,f6:float32,f7:float32",
}

var wantOutputs = map[string]string{
	"logreg_multiclass": "prediction:int64,probability_0:float64,probability_1:float64,probability_2:float64",
	"binary_gb":         "prediction:int64,probability_0:float64,probability_1:float64",
	"regressor":         "prediction:float64",
	"columns":           "prediction:int64,probability_0:float64,probability_1:float64",
	"mlp":               "prediction:int64,probability_0:float64,probability_1:float64,probability_2:float64",
	"mlp_batch1":        "prediction:int64,probability_0:float64,probability_1:float64,probability_2:float64",
}

func schemaString(s *arrow.Schema) string {
	parts := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		parts[i] = f.Name + ":" + f.Type.String()
	}
	return strings.Join(parts, ",")
}

func TestFixtures(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			m := openFixture(t, name, nil)
			if got := schemaString(m.InputSchema()); got != wantInputs[name] {
				t.Errorf("inputs %s, want %s", got, wantInputs[name])
			}
			if got := schemaString(m.OutputSchema()); got != wantOutputs[name] {
				t.Errorf("outputs %s, want %s", got, wantOutputs[name])
			}
			exp := expected(t, name)
			for _, wide := range []bool{false, true} {
				rec := inputBatch(t, m, name, wide)
				n := int(rec.NumRows())
				for _, size := range []int{1, 7, n} {
					got := predictAll(t, m, rec, size)
					for _, f := range m.OutputSchema().Fields() {
						exact := f.Type.ID() == arrow.INT64
						what := func(src string) string {
							return src + " " + f.Name + " batch " + strconv.Itoa(size) + " wide " + strconv.FormatBool(wide)
						}
						ref := "ort"
						if size == 1 {
							ref = "ort1"
						}
						assertClose(t, what(ref), got[f.Name], exp[ref][f.Name], tolORT, exact)
						tol := tolSK
						if v, ok := tolSKFixture[name]; ok {
							tol = v
						}
						assertClose(t, what("sklearn"), got[f.Name], exp["sk"][f.Name], tol, exact)
					}
				}
				rec.Release()
			}
		})
	}
}

func TestFeaturesOverride(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	m := openFixture(t, "logreg_multiclass", func(c *infer.Config) { c.Features = names })
	if got := schemaString(m.InputSchema()); got != "a:float32,b:float32,c:float32,d:float32" {
		t.Fatalf("inputs %s", got)
	}
	needRuntime(t)
	_, err := infer.Open(infer.Config{Format: "onnx", Path: "testdata/logreg_multiclass.onnx", Features: names[:3]})
	if !errors.Is(err, infer.ErrBinding) || !strings.Contains(err.Error(), "4 features") {
		t.Fatalf("3 names for 4 features: %v", err)
	}
	_, err = infer.Open(infer.Config{Format: "onnx", Path: "testdata/logreg_multiclass.onnx", Features: []string{"a", "a", "b", "c"}})
	if !errors.Is(err, infer.ErrBinding) {
		t.Fatalf("duplicate names: %v", err)
	}
	cols := openFixture(t, "columns", func(c *infer.Config) { c.Features = []string{"AGE", "VISITS", "CITY"} })
	if got := schemaString(cols.InputSchema()); got != "AGE:float32,VISITS:int64,CITY:utf8" {
		t.Fatalf("inputs %s", got)
	}
}

func TestBindErrors(t *testing.T) {
	m := openFixture(t, "regressor", nil)
	s := arrow.NewSchema([]arrow.Field{{Name: "age", Type: arrow.PrimitiveTypes.Float64}, {Name: "income", Type: arrow.BinaryTypes.String}}, nil)
	_, err := infer.Bind(m, s)
	if !errors.Is(err, infer.ErrBinding) || !strings.Contains(err.Error(), `"tenure" not found`) || !strings.Contains(err.Error(), `"income" wants float`) {
		t.Fatalf("bind: %v", err)
	}
	rec := inputBatch(t, m, "regressor", false)
	defer rec.Release()
	short := rec.NewSlice(0, 3)
	defer short.Release()
	cols := short.Columns()[:3]
	bad := array.NewRecordBatch(arrow.NewSchema(short.Schema().Fields()[:3], nil), cols, 3)
	defer bad.Release()
	if _, err := m.Predict(context.Background(), bad); !errors.Is(err, infer.ErrBinding) {
		t.Fatalf("3 columns for 5 inputs: %v", err)
	}
}

func TestColumnInputs(t *testing.T) {
	m := openFixture(t, "columns", nil)
	exp := expected(t, "columns")
	rec := inputBatch(t, m, "columns", false)
	defer rec.Release()
	// visits as int32 and age as float64: converted.
	b := array.NewInt32Builder(memory.DefaultAllocator)
	for _, v := range rec.Column(1).(*array.Int64).Int64Values() {
		b.Append(int32(v))
	}
	visits := b.NewArray()
	defer visits.Release()
	fb := array.NewFloat64Builder(memory.DefaultAllocator)
	for _, v := range rec.Column(0).(*array.Float32).Float32Values() {
		fb.Append(float64(v))
	}
	age := fb.NewArray()
	defer age.Release()
	s := arrow.NewSchema([]arrow.Field{{Name: "age", Type: age.DataType()}, {Name: "visits", Type: visits.DataType()}, {Name: "city", Type: rec.Column(2).DataType()}}, nil)
	conv := array.NewRecordBatch(s, []arrow.Array{age, visits, rec.Column(2)}, rec.NumRows())
	defer conv.Release()
	got := predictAll(t, m, conv, 50)
	assertClose(t, "converted prediction", got["prediction"], exp["ort"]["prediction"], 0, true)
	assertClose(t, "converted probability_1", got["probability_1"], exp["ort"]["probability_1"], tolORT, false)

	// A null int64 value fails the batch with a clear message.
	ib := array.NewInt64Builder(memory.DefaultAllocator)
	ib.AppendValues([]int64{1, 2}, nil)
	ib.AppendNull()
	nv := ib.NewArray()
	defer nv.Release()
	ab := array.NewFloat32Builder(memory.DefaultAllocator)
	ab.AppendValues([]float32{30, 40, 50}, nil)
	na := ab.NewArray()
	defer na.Release()
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	sb.AppendValues([]string{"paris", "lyon"}, nil)
	sb.AppendNull() // a null string is ""
	nc := sb.NewArray()
	defer nc.Release()
	nulls := array.NewRecordBatch(m.InputSchema(), []arrow.Array{na, nv, nc}, 3)
	defer nulls.Release()
	_, err := m.Predict(context.Background(), nulls)
	if err == nil || !strings.Contains(err.Error(), "visits") || !strings.Contains(err.Error(), "cannot be missing") {
		t.Fatalf("null int64: %v", err)
	}
}

func TestCorruptFiles(t *testing.T) {
	needRuntime(t)
	dir := t.TempDir()
	good, err := os.ReadFile("testdata/binary_gb.onnx")
	if err != nil {
		t.Fatal(err)
	}
	xgb, err := os.ReadFile("../testdata/xgboost/binary_logistic.model.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"truncated", good[:len(good)/2], infer.ErrCorrupt, "onnxruntime cannot load"},
		{"garbage", []byte("\x00\x01\x02 this is not a protobuf \xff\xfe"), infer.ErrCorrupt, "onnxruntime cannot load"},
		{"empty", nil, infer.ErrCorrupt, "empty"},
		{"xgboost", xgb, infer.ErrCorrupt, "XGBoost"},
		{"lightgbm", []byte("tree\nversion=v4\n"), infer.ErrCorrupt, "LightGBM"},
		{"zip", []byte("PK\x03\x04rest"), infer.ErrCorrupt, "zip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name+".onnx")
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := infer.Open(infer.Config{Format: "onnx", Path: p})
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v containing %q", err, c.want, c.msg)
			}
		})
	}
	if _, err := infer.Open(infer.Config{Format: "onnx", Path: filepath.Join(dir, "missing.onnx")}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	// Detection by extension reaches the onnx opener.
	if _, err := infer.Open(infer.Config{Path: filepath.Join(dir, "xgboost.onnx")}); !errors.Is(err, infer.ErrCorrupt) {
		t.Fatalf("detected: %v", err)
	}
}

func TestZipMapRefused(t *testing.T) {
	needRuntime(t)
	_, err := infer.Open(infer.Config{Format: "onnx", Path: "testdata/zipmap.onnx"})
	if !errors.Is(err, infer.ErrUnsupported) || !strings.Contains(err.Error(), "'zipmap': False") {
		t.Fatalf("zipmap: %v", err)
	}
}

func TestCloseAndCancel(t *testing.T) {
	m := openFixture(t, "mlp_batch1", nil)
	rec := inputBatch(t, m, "mlp_batch1", false)
	defer rec.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Predict(ctx, rec); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.Predict(context.Background(), rec); err == nil || !strings.Contains(err.Error(), "after Close") {
		t.Fatalf("after Close: %v", err)
	}
	// Empty batches need no Run.
	m2 := openFixture(t, "mlp", nil)
	empty := rec.NewSlice(0, 0)
	defer empty.Release()
	res, err := m2.Predict(context.Background(), empty)
	if err != nil {
		t.Fatal(err)
	}
	if res.NumRows() != 0 || res.NumCols() != 4 {
		t.Fatalf("empty: %d rows %d cols", res.NumRows(), res.NumCols())
	}
	res.Release()
}

func TestConcurrentPredict(t *testing.T) {
	m := openFixture(t, "mlp", func(c *infer.Config) { c.Threads = 2 })
	exp := expected(t, "mlp")
	rec := inputBatch(t, m, "mlp", false)
	defer rec.Release()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				res, err := m.Predict(context.Background(), rec)
				if err != nil {
					errs <- err
					return
				}
				p := res.Column(2).(*array.Float64).Float64Values()
				for r, v := range p {
					if math.Abs(v-exp["ort"]["probability_1"][r]) > tolORT {
						errs <- errors.New("goroutine " + strconv.Itoa(g) + ": wrong probability at row " + strconv.Itoa(r))
						res.Release()
						return
					}
				}
				res.Release()
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRuntimeErrors(t *testing.T) {
	needRuntime(t)
	path, version, err := LoadRuntime("")
	if err != nil || path == "" || versionLess(version, MinVersion) {
		t.Fatalf("LoadRuntime: %q %q %v", path, version, err)
	}
	// The same library through a symlink is fine; another one is not.
	dir := t.TempDir()
	link := filepath.Join(dir, "libonnxruntime.so")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadRuntime(link); err != nil {
		t.Fatalf("symlink to the loaded library: %v", err)
	}
	other := filepath.Join(dir, "libonnxruntime.so.9.9.9")
	if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadRuntime(other); err == nil || !strings.Contains(err.Error(), "already uses") {
		t.Fatalf("another library: %v", err)
	}
	if _, err := infer.Open(infer.Config{Format: "onnx", Path: "testdata/mlp.onnx", Runtime: other}); err == nil || !strings.Contains(err.Error(), "already uses") {
		t.Fatalf("Config.Runtime: %v", err)
	}

	// The not-found message says where it looked and how to install.
	saved := searchPath
	defer func() { searchPath = saved }()
	searchPath = func() []string { return []string{filepath.Join(dir, "nowhere", "libonnxruntime.so*")} }
	_, err = findRuntime()
	if !errors.Is(err, ErrRuntimeNotFound) || !strings.Contains(err.Error(), "nowhere") ||
		!strings.Contains(err.Error(), "scripts/onnxruntime.sh") || !strings.Contains(err.Error(), EnvRuntime) {
		t.Fatalf("not found: %v", err)
	}
	// The newest version wins within a pattern.
	for _, v := range []string{"1.9.0", "1.24.1", "1.31.1"} {
		if err := os.WriteFile(filepath.Join(dir, "libonnxruntime.so."+v), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	searchPath = func() []string { return []string{filepath.Join(dir, "libonnxruntime.so.1*")} }
	if got, err := findRuntime(); err != nil || filepath.Base(got) != "libonnxruntime.so.1.31.1" {
		t.Fatalf("newest: %q %v", got, err)
	}
}

func TestSearchPath(t *testing.T) {
	t.Setenv("LIMINAL_CACHE", "/cache")
	got := strings.Join(SearchPath(), " ")
	for _, want := range []string{"/cache/onnxruntime/libonnxruntime.so*", "/cache/venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*", "/usr/local/lib/", "/usr/lib/x86_64-linux-gnu/"} {
		if !strings.Contains(got, want) {
			t.Errorf("search path %s lacks %s", got, want)
		}
	}
}

func TestVersionLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{{"1.23.2", "1.24", true}, {"1.24", "1.24.0", false}, {"1.31.1", "1.24", false}, {"", "1.0", true}, {"2.0", "1.99", false}, {"1.24.0-rc1", "1.24", false}} {
		if got := versionLess(c.a, c.b); got != c.less {
			t.Errorf("versionLess(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
