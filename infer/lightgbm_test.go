package infer

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const lgbTestdata = "testdata/lightgbm"

var lgbFixtures = []string{
	"regression", "binary_nan", "multiclass", "multiclassova",
	"zero_missing", "no_missing", "categorical",
}

type lgbFixture struct {
	model    Trees
	x        []float32
	n        int
	pred     []float64
	raw      []float64
	features []string
}

func lgbLoadFixture(t testing.TB, name string) lgbFixture {
	t.Helper()
	m, err := LoadLightGBM(filepath.Join(lgbTestdata, name+".model.txt"))
	if err != nil {
		t.Fatal(err)
	}
	hdr, in := readFixtureCSV(t, filepath.Join(lgbTestdata, name+".input.csv"), 64)
	_, exp := readFixtureCSV(t, filepath.Join(lgbTestdata, name+".expected.csv"), 64)
	if len(in) != len(exp) {
		t.Fatalf("%s: %d input rows, %d expected rows", name, len(in), len(exp))
	}
	fx := lgbFixture{model: m, n: len(in), features: hdr}
	k := m.Outputs()
	for i, r := range in {
		for _, v := range r {
			// Inputs are float32 values written as shortest float32 text.
			fx.x = append(fx.x, float32(v))
		}
		if len(exp[i]) != 2*k {
			t.Fatalf("%s: expected row %d has %d values, want %d", name, i, len(exp[i]), 2*k)
		}
		fx.pred = append(fx.pred, exp[i][:k]...)
		fx.raw = append(fx.raw, exp[i][k:]...)
	}
	return fx
}

func lgbAssertClose(t *testing.T, what string, got, want []float64, k int) {
	t.Helper()
	bad := 0
	for i := range want {
		if d := math.Abs(got[i] - want[i]); !(d <= 1e-6*math.Max(1, math.Abs(want[i]))) {
			if bad < 5 {
				t.Errorf("%s: row %d output %d: got %.17g, want %.17g", what, i/k, i%k, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(want))
	}
}

func TestLGBFixtures(t *testing.T) {
	for _, name := range lgbFixtures {
		t.Run(name, func(t *testing.T) {
			fx := lgbLoadFixture(t, name)
			m := fx.model
			if got, want := strings.Join(m.Features(), ","), strings.Join(fx.features, ","); got != want {
				t.Errorf("features %s, want %s", got, want)
			}
			k := m.Outputs()
			out := make([]float64, fx.n*k)
			if err := m.Predict(fx.x, fx.n, out); err != nil {
				t.Fatal(err)
			}
			lgbAssertClose(t, "predict", out, fx.pred, k)
			if err := m.Margin(fx.x, fx.n, out); err != nil {
				t.Fatal(err)
			}
			lgbAssertClose(t, "margin", out, fx.raw, k)
		})
	}
}

// TestLGBBatchSizes checks results do not depend on how rows are batched.
func TestLGBBatchSizes(t *testing.T) {
	for _, name := range lgbFixtures {
		t.Run(name, func(t *testing.T) {
			fx := lgbLoadFixture(t, name)
			m := fx.model
			nf, k := len(m.Features()), m.Outputs()
			// Repeat the input so that it spans several blocks.
			var x []float32
			for range 5 {
				x = append(x, fx.x...)
			}
			n := 5 * fx.n
			whole := make([]float64, n*k)
			if err := m.Predict(x, n, whole); err != nil {
				t.Fatal(err)
			}
			for _, bs := range []int{1, 2, 3, 7, 16, 127, 128, 129, 1024} {
				got := make([]float64, n*k)
				for s := 0; s < n; s += bs {
					e := min(s+bs, n)
					if err := m.Predict(x[s*nf:e*nf], e-s, got[s*k:e*k]); err != nil {
						t.Fatal(err)
					}
				}
				for i := range got {
					if got[i] != whole[i] && !(math.IsNaN(got[i]) && math.IsNaN(whole[i])) {
						t.Fatalf("batch size %d: value %d: %v, whole %v", bs, i, got[i], whole[i])
					}
				}
			}
		})
	}
}

func TestLGBLinearUnsupported(t *testing.T) {
	_, err := LoadLightGBM(filepath.Join(lgbTestdata, "linear.model.txt"))
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
	if !strings.Contains(err.Error(), "linear") {
		t.Errorf("error %q does not name linear trees", err)
	}
}

func TestLGBLoadMissingFile(t *testing.T) {
	_, err := LoadLightGBM(filepath.Join(t.TempDir(), "nope.txt"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not exist", err)
	}
}

// lgbTiny builds a one-feature-pair model text around a single tree body.
func lgbTiny(objective string, tree string) string {
	return "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=1\n" +
		"objective=" + objective + "\nfeature_names=a b\nfeature_infos=none none\n\n" +
		"Tree=0\n" + tree + "\nend of trees\n"
}

func lgbStump(decisionType int, threshold string) string {
	return "num_leaves=2\nnum_cat=0\nsplit_feature=0\nsplit_gain=1\nthreshold=" + threshold +
		"\ndecision_type=" + strconv.Itoa(decisionType) +
		"\nleft_child=-1\nright_child=-2\nleaf_value=-1 1\nis_linear=0\nshrinkage=1\n"
}

func TestLGBEdgeCases(t *testing.T) {
	nan := float32(math.NaN())
	tiny := float32(1e-36)
	tests := map[string]struct {
		model string
		in    []float32 // values of feature a (b is 0)
		want  []float64 // margins
	}{
		"single leaf": {
			model: lgbTiny("regression", "num_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\nleft_child=\nright_child=\nleaf_value=0.25\nis_linear=0\nshrinkage=1\n"),
			in:    []float32{1, nan, 0},
			want:  []float64{0.25, 0.25, 0.25},
		},
		// missing None: NaN is 0.0, compared with the threshold.
		"none nan as zero, thr>0": {
			model: lgbTiny("regression", lgbStump(0, "0.5")),
			in:    []float32{nan, 0, 0.5, 0.50001, -3},
			want:  []float64{-1, -1, -1, 1, -1},
		},
		"none nan as zero, thr<0": {
			model: lgbTiny("regression", lgbStump(0, "-0.5")),
			in:    []float32{nan, 0, -0.5, -0.49999},
			want:  []float64{1, 1, -1, 1},
		},
		"none default_left ignored": {
			model: lgbTiny("regression", lgbStump(2, "-0.5")),
			in:    []float32{nan, -1},
			want:  []float64{1, -1},
		},
		// missing Zero (bits 2-3 = 1): 0, tiny and NaN take the default.
		"zero default right": {
			model: lgbTiny("regression", lgbStump(4, "1")),
			in:    []float32{0, tiny, -tiny, nan, 0.5, 2},
			want:  []float64{1, 1, 1, 1, -1, 1},
		},
		"zero default left": {
			model: lgbTiny("regression", lgbStump(6, "-1")),
			in:    []float32{0, nan, -0.5, -2},
			want:  []float64{-1, -1, 1, -1},
		},
		// missing NaN (bits 2-3 = 2): only NaN takes the default.
		"nan default right": {
			model: lgbTiny("regression", lgbStump(8, "1")),
			in:    []float32{nan, 0, 1, 1.0000001},
			want:  []float64{1, -1, -1, 1},
		},
		"nan default left": {
			model: lgbTiny("regression", lgbStump(10, "-1")),
			in:    []float32{nan, 0, -1, -2},
			want:  []float64{-1, 1, -1, -1},
		},
		// Values with |x| <= 1e-35 are read as 0 by LightGBM.
		"near-zero threshold": {
			model: lgbTiny("regression", lgbStump(8, "-1.0000000180025095e-35")),
			in:    []float32{float32(-1e-35), tiny, -tiny, float32(-2e-35), 0},
			want:  []float64{1, 1, 1, -1, 1},
		},
		// Categorical: categories {1, 3, 33} go left.
		"categorical": {
			model: lgbTiny("regression", "num_leaves=2\nnum_cat=1\nsplit_feature=0\nsplit_gain=1\nthreshold=0\ndecision_type=1\nleft_child=-1\nright_child=-2\nleaf_value=-1 1\ncat_boundaries=0 2\ncat_threshold=10 2\nis_linear=0\nshrinkage=1\n"),
			in:    []float32{1, 3, 33, 0, 2, 3.9, -0.5, -1, nan, 64, 1e10, float32(math.Inf(1)), 2147483648},
			want:  []float64{-1, -1, -1, 1, 1, -1, 1, 1, 1, 1, 1, 1, 1},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := ParseLightGBM([]byte(tc.model))
			if err != nil {
				t.Fatal(err)
			}
			x := make([]float32, 2*len(tc.in))
			for i, v := range tc.in {
				x[2*i] = v
			}
			out := make([]float64, len(tc.in))
			if err := m.Margin(x, len(tc.in), out); err != nil {
				t.Fatal(err)
			}
			for i := range out {
				if out[i] != tc.want[i] {
					t.Errorf("a=%v: margin %v, want %v", tc.in[i], out[i], tc.want[i])
				}
			}
		})
	}
}

func TestLGBObjectives(t *testing.T) {
	tests := map[string]struct {
		objective string
		raw, want float64
	}{
		"regression":        {"regression", -1, -1},
		"sqrt":              {"regression sqrt", -1.5, -2.25},
		"huber":             {"huber", 2, 2},
		"binary":            {"binary sigmoid:2", 0.5, 1 / (1 + math.Exp(-1))},
		"poisson":           {"poisson", 0.5, math.Exp(0.5)},
		"xentropy":          {"cross_entropy", 0.5, 1 / (1 + math.Exp(-0.5))},
		"xentlambda":        {"cross_entropy_lambda", 0.5, math.Log1p(math.Exp(0.5))},
		"lambdarank":        {"lambdarank", 3, 3},
		"missing objective": {"", 3, 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			leaf := strconv.FormatFloat(tc.raw, 'g', -1, 64)
			m, err := ParseLightGBM([]byte(lgbTiny(tc.objective, "num_leaves=1\nleaf_value="+leaf+"\n")))
			if err != nil {
				t.Fatal(err)
			}
			out := []float64{0}
			if err := m.Predict([]float32{0, 0}, 1, out); err != nil {
				t.Fatal(err)
			}
			if math.Abs(out[0]-tc.want) > 1e-15 {
				t.Errorf("predict %v, want %v", out[0], tc.want)
			}
		})
	}
	_, err := ParseLightGBM([]byte(lgbTiny("my_objective", "num_leaves=1\nleaf_value=1\n")))
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown objective: err = %v, want ErrUnsupported", err)
	}
}

func TestLGBBadInput(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(lgbTestdata, "regression.model.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	replace := func(old, new string) string {
		if !strings.Contains(s, old) {
			t.Fatalf("fixture has no %q", old)
		}
		return strings.Replace(s, old, new, 1)
	}
	stump := lgbStump(2, "0.5")
	tests := map[string]string{
		"empty":                 "",
		"xgboost json":          `{"learner":{"attributes":{},"gradient_booster":{"model":{"trees":[]}}},"version":[2,1,0]}`,
		"random text":           "hello world\nthis is not a model\n",
		"binary garbage":        "\x00\x01\x02\xff\xfe",
		"truncated half":        s[:len(s)/2],
		"truncated header":      s[:100],
		"no end of trees":       s[:strings.Index(s, "end of trees")],
		"no num_class":          replace("num_class=1\n", ""),
		"no max_feature":        replace("max_feature_idx=5\n", ""),
		"no feature_names":      replace("feature_names=", "feature_namez="),
		"few feature_names":     replace("feature_names=Column_0 ", "feature_names="),
		"bad num_class":         replace("num_class=1", "num_class=x"),
		"tree out of order":     replace("Tree=1\n", "Tree=7\n"),
		"no leaf_value":         replace("leaf_value=", "leaf_valuez="),
		"short threshold":       replace("threshold=-0.092416036874055849 ", "threshold="),
		"bad threshold":         replace("threshold=-0.092416036874055849", "threshold=abc"),
		"feature too big":       replace("split_feature=0 0 0 1", "split_feature=9 0 0 1"),
		"child out of range":    replace("left_child=2 3 6 7", "left_child=2 3 6 70"),
		"leaf out of range":     replace("right_child=1 8 4 5 11 -7", "right_child=1 8 4 5 11 -70"),
		"cycle":                 replace("left_child=2 3 6 7", "left_child=0 3 6 7"),
		"leaf twice":            replace("right_child=1 8 4 5 11 -7", "right_child=1 8 4 5 11 -1"),
		"missing type 3":        replace("decision_type=2 2", "decision_type=14 2"),
		"bad num_leaves":        replace("num_leaves=15", "num_leaves=-3"),
		"multiclass mismatch":   strings.Replace(lgbTiny("multiclass num_class:3", stump), "num_class=1", "num_class=3", 1),
		"categorical no bounds": lgbTiny("regression", strings.Replace(stump, "decision_type=2", "decision_type=1", 1)),
		"categorical bad index": lgbTiny("regression", strings.Replace(lgbStump(1, "1"),
			"num_cat=0", "num_cat=1\ncat_boundaries=0 1\ncat_threshold=3", 1)),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := ParseLightGBM([]byte(data))
			if err == nil {
				t.Fatalf("parsed %d-feature model, want error", len(m.Features()))
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestLGBPredictArgs(t *testing.T) {
	fx := lgbLoadFixture(t, "multiclass")
	m := fx.model
	if err := m.Predict(fx.x[:3], 1, make([]float64, 3)); err == nil {
		t.Error("short x: no error")
	}
	if err := m.Predict(fx.x, 2, make([]float64, 5)); err == nil {
		t.Error("short out: no error")
	}
	if err := m.Margin(fx.x, -1, nil); err == nil {
		t.Error("negative n: no error")
	}
	if err := m.Predict(nil, 0, nil); err != nil {
		t.Errorf("zero rows: %v", err)
	}
}

func TestLGBConcurrent(t *testing.T) {
	fx := lgbLoadFixture(t, "binary_nan")
	done := make(chan error, 4)
	for range 4 {
		go func() {
			out := make([]float64, fx.n)
			for range 20 {
				if err := fx.model.Predict(fx.x, fx.n, out); err != nil {
					done <- err
					return
				}
				for i := range out {
					if math.Abs(out[i]-fx.pred[i]) > 1e-6 {
						done <- errors.New("mismatch under concurrency")
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzLGBParse(f *testing.F) {
	for _, name := range append(lgbFixtures, "linear") {
		data, err := os.ReadFile(filepath.Join(lgbTestdata, name+".model.txt"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint64(1))
	}
	f.Add([]byte(lgbTiny("binary sigmoid:1", lgbStump(10, "0.5"))), uint64(2))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		m, err := ParseLightGBM(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error of unknown kind: %v", err)
			}
			return
		}
		nf, k := len(m.Features()), m.Outputs()
		if nf == 0 || nf > 1<<12 || k > 1<<8 {
			return
		}
		rng := rand.New(rand.NewPCG(seed, 1))
		const n = 9
		x := make([]float32, n*nf)
		specials := []float32{float32(math.NaN()), 0, float32(math.Inf(1)), float32(math.Inf(-1)), 1e-36, -1, 3, 1e30}
		for i := range x {
			if rng.IntN(3) == 0 {
				x[i] = specials[rng.IntN(len(specials))]
			} else {
				x[i] = float32(rng.NormFloat64() * 10)
			}
		}
		out := make([]float64, n*k)
		if err := m.Predict(x, n, out); err != nil {
			t.Fatal(err)
		}
		if err := m.Margin(x, n, out); err != nil {
			t.Fatal(err)
		}
	})
}
