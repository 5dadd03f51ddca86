package infer

import (
	"context"
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
)

// Fixtures in testdata/linear are made by make_fixtures.py with
// scikit-learn (see VERSION): NAME.model.json (LinearDoc), NAME.input.csv,
// NAME.expected.csv (p0.. = predict or predict_proba, label = predict).

// linearTol is the relative tolerance against scikit-learn: both compute in
// float64 (sums in a different order, exp/log implementations).
const linearTol = 1e-9

// linearBatch builds a float64 record from a header and rows (NaN -> null
// when nanAsNull, else kept as a NaN value).
func linearBatch(header []string, rows [][]float64, nanAsNull bool) arrow.RecordBatch {
	fields := make([]arrow.Field, len(header))
	cols := make([]arrow.Array, len(header))
	for c, h := range header {
		fields[c] = arrow.Field{Name: h, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
		b := array.NewFloat64Builder(memory.DefaultAllocator)
		for _, r := range rows {
			if nanAsNull && math.IsNaN(r[c]) {
				b.AppendNull()
			} else {
				b.Append(r[c])
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

// linearPredict scores rec through a Binding in batches of size rows and
// returns each output column as float64 (NaN for nulls).
func linearPredict(t *testing.T, m Model, rec arrow.RecordBatch, size int) map[string][]float64 {
	t.Helper()
	bind, err := Bind(m, rec.Schema())
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
		if !res.Schema().Equal(m.OutputSchema()) || int(res.NumRows()) != end-start {
			t.Fatalf("output %v with %d rows", res.Schema(), res.NumRows())
		}
		for i, f := range res.Schema().Fields() {
			col := res.Column(i)
			for r := 0; r < col.Len(); r++ {
				v := math.NaN()
				if col.IsValid(r) {
					switch a := col.(type) {
					case *array.Float64:
						v = a.Value(r)
					case *array.Int64:
						v = float64(a.Value(r))
					default:
						t.Fatalf("column %q: %T", f.Name, col)
					}
				}
				out[f.Name] = append(out[f.Name], v)
			}
		}
		res.Release()
	}
	return out
}

func linearClose(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if !(math.Abs(got[i]-want[i]) <= linearTol*max(1, math.Abs(want[i]))) {
			if bad < 5 {
				t.Errorf("%s row %d: got %v want %v", what, i, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(want))
	}
}

func TestLinearFixtures(t *testing.T) {
	for _, c := range []struct {
		name string
		out  string                                              // output schema
		want func(exp map[string][]float64) map[string][]float64 // our column -> expected
	}{
		{"regression", "prediction:float64", func(e map[string][]float64) map[string][]float64 {
			return map[string][]float64{"prediction": e["p0"]}
		}},
		{"binary", "prediction:float64", func(e map[string][]float64) map[string][]float64 {
			return map[string][]float64{"prediction": e["p0"]}
		}},
		{"multinomial", "prediction:int64,probability_0:float64,probability_1:float64,probability_2:float64", func(e map[string][]float64) map[string][]float64 {
			return map[string][]float64{"prediction": e["label"], "probability_0": e["p0"], "probability_1": e["p1"], "probability_2": e["p2"]}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "linear")
			m, err := Open(Config{Path: c.name + ".model.json", Dir: dir}) // detected as linear
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var parts []string
			for _, f := range m.OutputSchema().Fields() {
				parts = append(parts, f.Name+":"+f.Type.String())
			}
			if got := strings.Join(parts, ","); got != c.out {
				t.Fatalf("outputs %s, want %s", got, c.out)
			}
			header, rows := readFixtureCSV(t, filepath.Join(dir, c.name+".input.csv"), 64)
			for i, f := range m.InputSchema().Fields() {
				if f.Name != header[i] {
					t.Fatalf("input %d is %q, the fixture has %q", i, f.Name, header[i])
				}
			}
			eh, erows := readFixtureCSV(t, filepath.Join(dir, c.name+".expected.csv"), 64)
			exp := map[string][]float64{}
			for j, h := range eh {
				for _, r := range erows {
					exp[h] = append(exp[h], r[j])
				}
			}
			want := c.want(exp)
			rec := linearBatch(header, rows, false)
			defer rec.Release()
			for _, size := range []int{1, 7, 64, len(rows)} {
				got := linearPredict(t, m, rec, size)
				for col, w := range want {
					linearClose(t, col+" batch "+strconv.Itoa(size), got[col], w)
				}
			}
			if c.name == "binary" {
				// sklearn's label is probability > 0.5.
				got := linearPredict(t, m, rec, len(rows))["prediction"]
				for i, p := range got {
					if (p > 0.5) != (exp["label"][i] == 1) {
						t.Errorf("row %d: probability %v, sklearn label %v", i, p, exp["label"][i])
					}
				}
			}
		})
	}
}

func TestLinearBadFiles(t *testing.T) {
	cases := []struct {
		name, doc string
		want      error
		msg       string
	}{
		{"corrupt json", `{"features": ["a"], "coefficients": [1,`, ErrCorrupt, ""},
		{"not json", `tree`, ErrCorrupt, ""},
		{"unknown field", `{"features": ["a"], "coefficients": [1], "coef": 2}`, ErrCorrupt, "coef"},
		{"no features", `{"features": [], "coefficients": []}`, ErrCorrupt, "no features"},
		{"too few coefficients", `{"features": ["a", "b"], "coefficients": [1]}`, ErrCorrupt, "1 values for 2 features"},
		{"too many coefficients", `{"features": ["a"], "coefficients": [1, 2]}`, ErrCorrupt, "2 values for 1 features"},
		{"ragged rows", `{"features": ["a", "b"], "coefficients": [[1, 2], [3]], "link": "softmax"}`, ErrCorrupt, "row 1"},
		{"coefficients not numbers", `{"features": ["a"], "coefficients": "x"}`, ErrCorrupt, "coefficients"},
		{"intercept count", `{"features": ["a"], "coefficients": [[1], [2]], "intercept": [1], "link": "softmax"}`, ErrCorrupt, "1 intercepts for 2"},
		{"intercept type", `{"features": ["a"], "coefficients": [1], "intercept": "x"}`, ErrCorrupt, "intercept"},
		{"unknown link", `{"features": ["a"], "coefficients": [1], "link": "probit"}`, ErrUnsupported, "probit"},
		{"identity with rows", `{"features": ["a"], "coefficients": [[1], [2]], "intercept": [0, 0]}`, ErrUnsupported, "identity"},
		{"logistic with rows", `{"features": ["a"], "coefficients": [[1], [2]], "intercept": [0, 0], "link": "logistic"}`, ErrCorrupt, "softmax"},
		{"softmax with one row", `{"features": ["a"], "coefficients": [1], "link": "softmax"}`, ErrCorrupt, "softmax"},
		{"unknown missing", `{"features": ["a"], "coefficients": [1], "missing": "mean"}`, ErrCorrupt, "mean"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseLinear([]byte(c.doc), nil)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v containing %q", err, c.want, c.msg)
			}
		})
	}
	// Through Open: a missing file, and a corrupt one names the path.
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(p, []byte(`{"features": ["a"], "coefficients": [1, 2]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Format: "linear", Path: p}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
		t.Fatalf("corrupt file: %v", err)
	}
	if _, err := Open(Config{Format: "linear", Path: filepath.Join(dir, "none.json")}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	// Features must match the coefficient count.
	if _, err := ParseLinear([]byte(`{"features": ["a", "b"], "coefficients": [1, 2]}`), []string{"x"}); !errors.Is(err, ErrBinding) {
		t.Fatalf("features: %v", err)
	}
}

func TestLinearMissing(t *testing.T) {
	nan := math.NaN()
	header := []string{"a", "b"}
	rows := [][]float64{{1, 2}, {nan, 2}, {1, nan}, {3, 4}}
	doc := func(missing string) []byte {
		s := `{"features": ["a", "b"], "coefficients": [2, -1], "intercept": 0.5`
		if missing != "" {
			s += `, "missing": "` + missing + `"`
		}
		return []byte(s + `}`)
	}
	for _, nanAsNull := range []bool{true, false} {
		what := "NaN value"
		if nanAsNull {
			what = "null"
		}
		rec := linearBatch(header, rows, nanAsNull)

		// Default (null): a missing feature makes the prediction null.
		m, err := ParseLinear(doc(""), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := linearPredict(t, m, rec, 4)["prediction"]
		want := []float64{0.5, nan, nan, 2.5}
		for i := range want {
			if math.IsNaN(want[i]) != math.IsNaN(got[i]) || (!math.IsNaN(want[i]) && got[i] != want[i]) {
				t.Errorf("%s, missing null: row %d = %v, want %v", what, i, got[i], want[i])
			}
		}
		res, err := m.Predict(context.Background(), rec)
		if err != nil {
			t.Fatal(err)
		}
		if res.Column(0).NullN() != 2 {
			t.Errorf("%s: %d null predictions, want 2", what, res.Column(0).NullN())
		}
		res.Release()

		// zero: a missing feature counts as 0.
		m, err = ParseLinear(doc("zero"), nil)
		if err != nil {
			t.Fatal(err)
		}
		got = linearPredict(t, m, rec, 3)["prediction"]
		for i, w := range []float64{0.5, -1.5, 2.5, 2.5} {
			if got[i] != w {
				t.Errorf("%s, missing zero: row %d = %v, want %v", what, i, got[i], w)
			}
		}

		// error: the batch fails, naming the feature and row.
		m, err = ParseLinear(doc("error"), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Predict(context.Background(), rec)
		if err == nil || !strings.Contains(err.Error(), `feature "a"`) || !strings.Contains(err.Error(), "row 1") {
			t.Errorf("%s, missing error: %v", what, err)
		}
		rec.Release()
	}

	// Softmax rows with a missing value are null in every column.
	m, err := ParseLinear([]byte(`{"features": ["a"], "coefficients": [[1], [-1]], "intercept": [0, 0], "link": "softmax"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := linearBatch([]string{"a"}, [][]float64{{1}, {nan}}, true)
	defer rec.Release()
	res, err := m.Predict(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	for i := 0; i < int(res.NumCols()); i++ {
		if res.Column(i).IsValid(1) || !res.Column(i).IsValid(0) {
			t.Errorf("column %d: validity %v %v", i, res.Column(i).IsValid(0), res.Column(i).IsValid(1))
		}
	}
	if p := res.Column(0).(*array.Int64).Value(0); p != 0 {
		t.Errorf("argmax %d", p)
	}

	// Wrong column count.
	m, err = ParseLinear(doc(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Predict(context.Background(), rec); !errors.Is(err, ErrBinding) {
		t.Errorf("1 column for 2 features: %v", err)
	}
}
