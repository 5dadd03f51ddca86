package infer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Fixtures in testdata/xgboost are made by make_fixtures.py with XGBoost
// itself (see VERSION): NAME.model.json, NAME.input.csv, NAME.expected.csv.

type xgbFixture struct {
	name     string
	model    []byte
	x        []float32
	n, nf    int
	pred     []float64 // n * npred
	margin   []float64 // n * nmargin
	npred    int
	nmargin  int
	features []string
}

func xgbFixtures(t testing.TB) []xgbFixture {
	t.Helper()
	paths, err := filepath.Glob("testdata/xgboost/*.model.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var out []xgbFixture
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".model.json")
		fx := xgbFixture{name: name}
		if fx.model, err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
		prefix := strings.TrimSuffix(p, ".model.json")
		hdr, rows := readFixtureCSV(t, prefix+".input.csv", 32)
		fx.nf, fx.n = len(hdr), len(rows)
		fx.features = hdr
		for _, r := range rows {
			for _, v := range r {
				fx.x = append(fx.x, float32(v))
			}
		}
		hdr, rows = readFixtureCSV(t, prefix+".expected.csv", 64)
		for _, h := range hdr {
			if strings.HasPrefix(h, "p") {
				fx.npred++
			} else {
				fx.nmargin++
			}
		}
		if len(rows) != fx.n {
			t.Fatalf("%s: %d expected rows for %d inputs", name, len(rows), fx.n)
		}
		for _, r := range rows {
			fx.pred = append(fx.pred, r[:fx.npred]...)
			fx.margin = append(fx.margin, r[fx.npred:]...)
		}
		out = append(out, fx)
	}
	return out
}

func xgbAssertClose(t *testing.T, what string, got, want []float64, width int) {
	t.Helper()
	bad := 0
	for i := range want {
		tol := 1e-6 * max(1, math.Abs(want[i]))
		if !(math.Abs(got[i]-want[i]) <= tol) {
			if bad < 5 {
				t.Errorf("%s row %d col %d: got %v want %v (diff %g)", what, i/width, i%width, got[i], want[i], got[i]-want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(want))
	}
}

func TestXGBFixtures(t *testing.T) {
	for _, fx := range xgbFixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			m, err := ParseXGBoost(fx.model)
			if err != nil {
				t.Fatal(err)
			}
			if m.Outputs() != fx.npred {
				t.Fatalf("Outputs() = %d, want %d", m.Outputs(), fx.npred)
			}
			if len(m.Features()) != fx.nf {
				t.Fatalf("%d features, input has %d", len(m.Features()), fx.nf)
			}
			pred := make([]float64, fx.n*fx.npred)
			if err := m.Predict(fx.x, fx.n, pred); err != nil {
				t.Fatal(err)
			}
			xgbAssertClose(t, "predict", pred, fx.pred, fx.npred)
			margin := make([]float64, fx.n*fx.nmargin)
			if err := m.Margin(fx.x, fx.n, margin); err != nil {
				t.Fatal(err)
			}
			xgbAssertClose(t, "margin", margin, fx.margin, fx.nmargin)
		})
	}
}

// TestXGBFixturesHitThresholds checks the fixtures exercise the edge
// cases: inputs exactly at split thresholds (and so the x < threshold
// comparison) and missing values at nodes defaulting both ways.
func TestXGBFixturesHitThresholds(t *testing.T) {
	for _, fx := range xgbFixtures(t) {
		m, err := ParseXGBoost(fx.model)
		if err != nil {
			t.Fatal(err)
		}
		thr := map[[2]uint32]bool{}
		for i, nd := range m.(*xgbModel).nodes {
			if nd.left != int32(i) {
				thr[[2]uint32{uint32(nd.feat), math.Float32bits(nd.cond)}] = true
			}
		}
		at := 0
		for i, v := range fx.x {
			if thr[[2]uint32{uint32(i % fx.nf), math.Float32bits(v)}] {
				at++
			}
		}
		if at < min(10, len(thr)) {
			t.Errorf("%s: only %d input values sit exactly on a split threshold", fx.name, at)
		}
	}
}

// TestXGBFixturesExact records how close we are: XGBoost's outputs are
// float32, and we reproduce its float32 arithmetic, so most values should
// match exactly. Only logged.
func TestXGBFixturesExact(t *testing.T) {
	for _, fx := range xgbFixtures(t) {
		m, err := ParseXGBoost(fx.model)
		if err != nil {
			t.Fatal(err)
		}
		pred := make([]float64, fx.n*fx.npred)
		margin := make([]float64, fx.n*fx.nmargin)
		if err := m.Predict(fx.x, fx.n, pred); err != nil {
			t.Fatal(err)
		}
		if err := m.Margin(fx.x, fx.n, margin); err != nil {
			t.Fatal(err)
		}
		diff := 0
		for i := range pred {
			if pred[i] != fx.pred[i] {
				diff++
			}
		}
		for i := range margin {
			if margin[i] != fx.margin[i] {
				diff++
			}
		}
		t.Logf("%s: %d of %d values not bit-identical to XGBoost", fx.name, diff, len(pred)+len(margin))
	}
}

func TestXGBLoad(t *testing.T) {
	m, err := LoadXGBoost("testdata/xgboost/reg_named.model.json")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"age", "income", "score", "tenure", "region_id"}
	if got := m.Features(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Features() = %v, want %v", got, want)
	}
	m, err = LoadXGBoost("testdata/xgboost/stumps.model.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.Features(), ","); got != "f0,f1,f2" {
		t.Errorf("Features() = %v, want f0,f1,f2", got)
	}
	if _, err := LoadXGBoost("testdata/xgboost/does-not-exist.json"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want ErrNotExist", err)
	}
}

// TestXGBBatchSizes checks results do not depend on how rows are grouped
// into calls: all rows at once, row by row, and blocks of 7 and 129.
func TestXGBBatchSizes(t *testing.T) {
	for _, fx := range xgbFixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			m, err := ParseXGBoost(fx.model)
			if err != nil {
				t.Fatal(err)
			}
			tm := m.(*xgbModel)
			for _, mode := range []struct {
				name  string
				width int
				fn    func([]float32, int, []float64) error
			}{{"predict", m.Outputs(), m.Predict}, {"margin", tm.MarginOutputs(), m.Margin}} {
				all := make([]float64, fx.n*mode.width)
				if err := mode.fn(fx.x, fx.n, all); err != nil {
					t.Fatal(err)
				}
				for _, bs := range []int{1, 2, 7, 129, 1024} {
					got := make([]float64, fx.n*mode.width)
					for s := 0; s < fx.n; s += bs {
						k := min(bs, fx.n-s)
						if err := mode.fn(fx.x[s*fx.nf:(s+k)*fx.nf], k, got[s*mode.width:(s+k)*mode.width]); err != nil {
							t.Fatal(err)
						}
					}
					for i := range all {
						if math.Float64bits(got[i]) != math.Float64bits(all[i]) {
							t.Fatalf("%s batch %d: value %d = %v, all-at-once %v", mode.name, bs, i, got[i], all[i])
						}
					}
				}
			}
		})
	}
}

// TestXGBWalkMatchesLevels checks the two evaluation strategies (row by
// row for unbalanced trees, level by level otherwise) agree bit for bit.
func TestXGBWalkMatchesLevels(t *testing.T) {
	for _, fx := range xgbFixtures(t) {
		m, err := ParseXGBoost(fx.model)
		if err != nil {
			t.Fatal(err)
		}
		tm := m.(*xgbModel)
		w := tm.MarginOutputs()
		levels := make([]float64, fx.n*w)
		if err := m.Margin(fx.x, fx.n, levels); err != nil {
			t.Fatal(err)
		}
		other, err := ParseXGBoost(fx.model)
		if err != nil {
			t.Fatal(err)
		}
		walked := other.(*xgbModel)
		for i := range walked.walk {
			walked.walk[i] = !tm.walk[i]
		}
		got := make([]float64, fx.n*w)
		if err := walked.Margin(fx.x, fx.n, got); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if math.Float64bits(got[i]) != math.Float64bits(levels[i]) {
				t.Fatalf("%s: value %d: walked %v, levels %v", fx.name, i, got[i], levels[i])
			}
		}
	}
}

// TestXGBUnbalanced checks a chain-shaped tree scores correctly with both
// evaluation strategies.
func TestXGBUnbalanced(t *testing.T) {
	// Node i (even) splits feature 0 at i: left is a leaf worth i, right
	// goes deeper. 12 internal nodes, depth 12.
	const k = 12
	var l, r, f, c, d []string
	for i := 0; i < k; i++ {
		l = append(l, strconv.Itoa(2*i+1))
		r = append(r, strconv.Itoa(2*i+2))
		f = append(f, "0")
		c = append(c, strconv.Itoa(i))
		d = append(d, "1")
		l = append(l, "-1")
		r = append(r, "-1")
		f = append(f, "0")
		c = append(c, strconv.Itoa(i))
		d = append(d, "0")
	}
	l, r, f, c, d = append(l, "-1"), append(r, "-1"), append(f, "0"), append(c, "100"), append(d, "0")
	j := func(s []string) string { return "[" + strings.Join(s, ",") + "]" }
	tree := `"left_children":` + j(l) + `,"right_children":` + j(r) + `,"split_indices":` + j(f) +
		`,"split_conditions":` + j(c) + `,"default_left":` + j(d)
	for _, walk := range []bool{false, true} {
		m, err := ParseXGBoost([]byte(xgbTinyModel("reg:squarederror", "0", 1, 0, nil, tree)))
		if err != nil {
			t.Fatal(err)
		}
		tm := m.(*xgbModel)
		if tm.depth[0] != k {
			t.Errorf("depth = %d, want %d", tm.depth[0], k)
		}
		tm.walk[0] = walk
		x := []float32{-5, 0, 0.5, 3, 10.5, 11, 50, float32(math.NaN())}
		want := []float64{0, 1, 1, 4, 11, 100, 100, 0}
		got := make([]float64, len(x))
		if err := m.Predict(x, len(x), got); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("walk %v: x = %v: got %v, want %v", walk, x[i], got[i], want[i])
			}
		}
	}
}

// TestXGBConcurrent scores one model from several goroutines (run with
// -race).
func TestXGBConcurrent(t *testing.T) {
	fx := xgbFixtures(t)[0]
	m, err := ParseXGBoost(fx.model)
	if err != nil {
		t.Fatal(err)
	}
	w := m.(*xgbModel).MarginOutputs()
	want := make([]float64, fx.n*w)
	if err := m.Margin(fx.x, fx.n, want); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			got := make([]float64, fx.n*w)
			for range 20 {
				if err := m.Margin(fx.x, fx.n, got); err != nil {
					errs <- err
					return
				}
				for i := range got {
					if got[i] != want[i] {
						errs <- fmt.Errorf("value %d: %v, want %v", i, got[i], want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestXGBScoreArgs(t *testing.T) {
	m, err := LoadXGBoost("testdata/xgboost/multi_softmax.model.json")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 2*6)
	if err := m.Predict(x, 2, make([]float64, 2)); err != nil {
		t.Errorf("softmax predict: %v", err)
	}
	if err := m.Margin(x, 2, make([]float64, 2)); err == nil {
		t.Error("softmax margin with 1 value per row: no error")
	}
	if err := m.Margin(x, 2, make([]float64, 6)); err != nil {
		t.Errorf("softmax margin: %v", err)
	}
	if err := m.Predict(x[:11], 2, make([]float64, 2)); err == nil {
		t.Error("short x: no error")
	}
	if err := m.Predict(x, -1, nil); err == nil {
		t.Error("negative n: no error")
	}
	if err := m.Predict(nil, 0, nil); err != nil {
		t.Errorf("zero rows: %v", err)
	}
}

// xgbTinyModel builds a model JSON document by hand. trees are given as
// JSON tree objects without tree_param (added here).
func xgbTinyModel(objective, baseScore string, numFeature, numClass int, treeInfo []int, trees ...string) string {
	var tb strings.Builder
	for i, tr := range trees {
		if i > 0 {
			tb.WriteString(",")
		}
		var probe struct {
			L []int `json:"left_children"`
		}
		if err := json.Unmarshal([]byte("{"+tr+"}"), &probe); err != nil {
			panic(err)
		}
		tb.WriteString(`{"id":` + strconv.Itoa(i) + `,` + tr +
			`,"tree_param":{"num_deleted":"0","num_feature":"` + strconv.Itoa(numFeature) +
			`","num_nodes":"` + strconv.Itoa(len(probe.L)) + `","size_leaf_vector":"1"}}`)
	}
	info, _ := json.Marshal(treeInfo)
	if treeInfo == nil {
		info = []byte("[" + strings.TrimSuffix(strings.Repeat("0,", len(trees)), ",") + "]")
	}
	return `{"learner":{"attributes":{},"feature_names":[],"feature_types":[],
"gradient_booster":{"model":{"gbtree_model_param":{"num_parallel_tree":"1","num_trees":"` + strconv.Itoa(len(trees)) + `"},
"iteration_indptr":[],"tree_info":` + string(info) + `,"trees":[` + tb.String() + `]},"name":"gbtree"},
"learner_model_param":{"base_score":"` + baseScore + `","boost_from_average":"1","num_class":"` + strconv.Itoa(numClass) + `","num_feature":"` + strconv.Itoa(numFeature) + `","num_target":"1"},
"objective":{"name":"` + objective + `"}},"version":[3,2,0]}`
}

// xgbStump is a tree splitting feature f at thr with leaves lo (x < thr)
// and hi.
func xgbStump(f int, thr string, defaultLeft int, lo, hi string) string {
	return `"left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[` + strconv.Itoa(f) + `,0,0],
"split_conditions":[` + thr + `,` + lo + `,` + hi + `],"default_left":[` + strconv.Itoa(defaultLeft) + `,0,0],
"split_type":[0,0,0],"categories":[],"categories_nodes":[],"base_weights":[0,0,0]`
}

const xgbLeafTree = `"left_children":[-1],"right_children":[-1],"split_indices":[0],"split_conditions":[0.25],
"default_left":[0],"split_type":[0],"categories":[],"categories_nodes":[],"base_weights":[0.25]`

func TestXGBTinyModels(t *testing.T) {
	nan := float32(math.NaN())
	thr := float32(0.1) // not exactly representable: compare in float32
	below := math.Nextafter32(thr, -1)
	above := math.Nextafter32(thr, 2)
	tests := map[string]struct {
		model  string
		x      []float32 // rows of the model's features
		margin []float64
		pred   []float64
	}{
		"single leaf": {
			model:  xgbTinyModel("reg:squarederror", "[5E-1]", 2, 0, nil, xgbLeafTree),
			x:      []float32{1, 2, nan, nan},
			margin: []float64{0.75, 0.75},
			pred:   []float64{0.75, 0.75},
		},
		"no features": {
			model:  xgbTinyModel("reg:squarederror", "1", 0, 0, nil, xgbLeafTree),
			x:      nil,
			margin: []float64{1.25, 1.25, 1.25},
			pred:   []float64{1.25, 1.25, 1.25},
		},
		"default left": {
			model:  xgbTinyModel("reg:squarederror", "0", 1, 0, nil, xgbStump(0, "0.1", 1, "-1", "1")),
			x:      []float32{nan, below, thr, above, float32(math.Inf(-1)), float32(math.Inf(1))},
			margin: []float64{-1, -1, 1, 1, -1, 1},
			pred:   []float64{-1, -1, 1, 1, -1, 1},
		},
		"default right": {
			model:  xgbTinyModel("reg:squarederror", "0", 1, 0, nil, xgbStump(0, "0.1", 0, "-1", "1")),
			x:      []float32{nan, below, thr, above},
			margin: []float64{1, -1, 1, 1},
			pred:   []float64{1, -1, 1, 1},
		},
		"second feature, two trees": {
			model: xgbTinyModel("reg:squarederror", "[0E0]", 2, 0, nil,
				xgbStump(1, "2", 1, "1", "2"), xgbStump(0, "-3", 0, "10", "20")),
			x:      []float32{100, 1, -4, 2, nan, nan},
			margin: []float64{21, 12, 21},
			pred:   []float64{21, 12, 21},
		},
		"logistic base 0.5": {
			model:  xgbTinyModel("binary:logistic", "5E-1", 1, 0, nil, xgbStump(0, "0", 0, "-2", "2")),
			x:      []float32{-1, 1},
			margin: []float64{-2, 2},
			pred:   []float64{float64(xgbSigmoid32(-2)), float64(xgbSigmoid32(2))},
		},
		"logitraw base": {
			model:  xgbTinyModel("binary:logitraw", "[7.5E-1]", 1, 0, nil, xgbLeafTree),
			x:      []float32{0},
			margin: []float64{1},
			pred:   []float64{1},
		},
		"poisson base": {
			model:  xgbTinyModel("count:poisson", "[2E0]", 1, 0, nil, xgbLeafTree),
			x:      []float32{0},
			margin: []float64{float64(float32(math.Log(2)) + 0.25)},
			pred:   []float64{float64(float32(math.Exp(float64(float32(math.Log(2)) + 0.25))))},
		},
		"softmax class": {
			model: xgbTinyModel("multi:softmax", "[0,0,0]", 1, 3, []int{0, 1, 2},
				xgbStump(0, "0", 0, "1", "0"), xgbStump(0, "1", 0, "0", "2"), xgbLeafTree),
			x:      []float32{-1, 0.5, 3},
			margin: []float64{1, 0, 0.25, 0, 0, 0.25, 0, 2, 0.25},
			pred:   []float64{0, 2, 1},
		},
		"softprob ties": {
			model:  xgbTinyModel("multi:softprob", "5E-1", 1, 2, []int{1}, xgbLeafTree),
			x:      []float32{0},
			margin: []float64{0.5, 0.75},
			pred:   []float64{float64(float32(1 / (1 + math.Exp(0.25)))), float64(float32(1 / (1 + math.Exp(-0.25))))},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := ParseXGBoost([]byte(tc.model))
			if err != nil {
				t.Fatal(err)
			}
			nf := len(m.Features())
			n := len(tc.margin) / m.(*xgbModel).MarginOutputs()
			if nf > 0 {
				n = len(tc.x) / nf
			}
			margin := make([]float64, len(tc.margin))
			if err := m.Margin(tc.x, n, margin); err != nil {
				t.Fatal(err)
			}
			pred := make([]float64, len(tc.pred))
			if err := m.Predict(tc.x, n, pred); err != nil {
				t.Fatal(err)
			}
			for i := range tc.margin {
				if math.Abs(margin[i]-tc.margin[i]) > 1e-6 {
					t.Errorf("margin[%d] = %v, want %v", i, margin[i], tc.margin[i])
				}
			}
			for i := range tc.pred {
				if math.Abs(pred[i]-tc.pred[i]) > 1e-6 {
					t.Errorf("pred[%d] = %v, want %v", i, pred[i], tc.pred[i])
				}
			}
		})
	}
}

func TestXGBErrors(t *testing.T) {
	good := xgbTinyModel("reg:squarederror", "0", 2, 0, nil, xgbStump(1, "0.5", 1, "1", "2"))
	if _, err := ParseXGBoost([]byte(good)); err != nil {
		t.Fatalf("base model: %v", err)
	}
	fixture, err := os.ReadFile("testdata/xgboost/binary_logistic.model.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		data string
		want error
		msg  string // substring of the error
	}{
		"empty":          {"", ErrCorrupt, "empty"},
		"not json":       {"hello world", ErrCorrupt, "not a JSON"},
		"lightgbm text":  {"tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\n", ErrCorrupt, "LightGBM"},
		"legacy binary":  {"binf\x00\x00\x00\x01", ErrCorrupt, "not a JSON"},
		"ubjson":         {"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{", ErrUnsupported, "UBJSON"},
		"random json":    {`{"a": [1, 2, 3], "b": {"c": null}}`, ErrCorrupt, "not an XGBoost model"},
		"json array":     {`[1,2,3]`, ErrCorrupt, "not a JSON"},
		"truncated":      {string(fixture[:len(fixture)/2]), ErrCorrupt, "invalid JSON"},
		"truncated tiny": {good[:len(good)-3], ErrCorrupt, "invalid JSON"},
		"gblinear": {strings.Replace(good, `"name":"gbtree"`, `"name":"gblinear"`, 1),
			ErrUnsupported, "gblinear"},
		"dart": {strings.Replace(good, `"name":"gbtree"`, `"name":"dart"`, 1),
			ErrUnsupported, "dart"},
		"unknown booster": {strings.Replace(good, `"name":"gbtree"`, `"name":"forest"`, 1),
			ErrCorrupt, "forest"},
		"objective": {strings.Replace(good, "reg:squarederror", "rank:pairwise", 1),
			ErrUnsupported, "rank:pairwise"},
		"no objective": {strings.Replace(good, `"objective":{"name":"reg:squarederror"}`, `"objective":{}`, 1),
			ErrCorrupt, "objective"},
		"categorical split": {strings.Replace(good, `"split_type":[0,0,0]`, `"split_type":[1,0,0]`, 1),
			ErrUnsupported, "categorical"},
		"categories": {strings.Replace(good, `"categories":[]`, `"categories":[3]`, 1),
			ErrUnsupported, "categorical"},
		"categorical feature": {strings.Replace(good, `"feature_types":[]`, `"feature_types":["q","c"]`, 1),
			ErrUnsupported, "categorical"},
		"feature out of range": {strings.Replace(good, `"split_indices":[1,`, `"split_indices":[2,`, 1),
			ErrCorrupt, "split feature 2"},
		"negative feature": {strings.Replace(good, `"split_indices":[1,`, `"split_indices":[-1,`, 1),
			ErrCorrupt, "split feature -1"},
		"child cycle": {strings.Replace(good, `"left_children":[1,-1,-1]`, `"left_children":[0,-1,-1]`, 1),
			ErrCorrupt, "child 0 out of range"},
		"child out of range": {strings.Replace(good, `"right_children":[2,-1,-1]`, `"right_children":[3,-1,-1]`, 1),
			ErrCorrupt, "child 3 out of range"},
		"same children": {strings.Replace(good, `"right_children":[2,-1,-1]`, `"right_children":[1,-1,-1]`, 1),
			ErrCorrupt, "already has parent"},
		"one child": {strings.Replace(good, `"right_children":[2,-1,-1]`, `"right_children":[-1,-1,-1]`, 1),
			ErrCorrupt, "one child missing"},
		"short array": {strings.Replace(good, `"split_conditions":[0.5,1,2]`, `"split_conditions":[0.5,1]`, 1),
			ErrCorrupt, "split_conditions has 2 entries"},
		"missing default_left": {strings.Replace(good, `"default_left":[1,0,0],`, ``, 1),
			ErrCorrupt, "default_left has 0 entries"},
		"bad default_left": {strings.Replace(good, `"default_left":[1,0,0]`, `"default_left":[2,0,0]`, 1),
			ErrCorrupt, "default_left"},
		"num_nodes": {strings.Replace(good, `"num_nodes":"3"`, `"num_nodes":"5"`, 1),
			ErrCorrupt, "num_nodes = 5"},
		"num_trees": {strings.Replace(good, `"num_trees":"1"`, `"num_trees":"2"`, 1),
			ErrCorrupt, "num_trees = 2"},
		"tree_info length": {strings.Replace(good, `"tree_info":[0]`, `"tree_info":[0,0]`, 1),
			ErrCorrupt, "tree_info"},
		"tree_info class": {strings.Replace(good, `"tree_info":[0]`, `"tree_info":[1]`, 1),
			ErrCorrupt, "class 1 out of range"},
		"num_class for regression": {strings.Replace(good, `"num_class":"0"`, `"num_class":"3"`, 1),
			ErrCorrupt, "num_class = 3"},
		"softprob without classes": {strings.Replace(good, "reg:squarederror", "multi:softprob", 1),
			ErrCorrupt, "num_class = 0"},
		"base_score vector length": {xgbTinyModel("multi:softprob", "[0,0]", 1, 3, []int{0}, xgbLeafTree),
			ErrCorrupt, "base_score has 2 values"},
		"base_score text": {strings.Replace(good, `"base_score":"0"`, `"base_score":"abc"`, 1),
			ErrCorrupt, "base_score"},
		"base_score missing": {strings.Replace(good, `"base_score":"0",`, ``, 1),
			ErrCorrupt, "base_score"},
		"logistic base_score": {xgbTinyModel("binary:logistic", "1", 1, 0, nil, xgbLeafTree),
			ErrCorrupt, "not a probability"},
		"poisson base_score": {xgbTinyModel("count:poisson", "-1", 1, 0, nil, xgbLeafTree),
			ErrCorrupt, "not positive"},
		"num_feature missing": {strings.Replace(good, `"num_feature":"2","num_target"`, `"num_target"`, 1),
			ErrCorrupt, "num_feature"},
		"num_feature text": {strings.Replace(good, `"num_feature":"2","num_target"`, `"num_feature":"x","num_target"`, 1),
			ErrCorrupt, "num_feature"},
		"feature_names length": {strings.Replace(good, `"feature_names":[]`, `"feature_names":["a"]`, 1),
			ErrCorrupt, "feature_names"},
		"too many classes": {xgbTinyModel("multi:softprob", "0", 1, 1<<20, []int{0}, xgbLeafTree),
			ErrUnsupported, "num_class = 1048576"},
		"multi-target": {strings.Replace(good, `"num_target":"1"`, `"num_target":"2"`, 1),
			ErrUnsupported, "multi-target"},
		"vector leaf": {strings.Replace(good, `"size_leaf_vector":"1"`, `"size_leaf_vector":"3"`, 1),
			ErrUnsupported, "vector leaves"},
		"empty tree": {xgbTinyModel("reg:squarederror", "0", 1, 0, nil,
			`"left_children":[],"right_children":[],"split_indices":[],"split_conditions":[],"default_left":[]`),
			ErrCorrupt, "no nodes"},
		"nan threshold": {strings.Replace(good, `"split_conditions":[0.5,1,2]`, `"split_conditions":[NaN,1,2]`, 1),
			ErrCorrupt, "invalid JSON"},
		"huge leaf": {strings.Replace(good, `"split_conditions":[0.5,1,2]`, `"split_conditions":[0.5,1e39,2]`, 1),
			ErrCorrupt, "invalid JSON"},
		"no booster": {`{"learner":{"objective":{"name":"reg:squarederror"}}}`, ErrCorrupt, "gradient_booster"},
		"no model":   {`{"learner":{"gradient_booster":{"name":"gbtree"}}}`, ErrCorrupt, "no model"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := ParseXGBoost([]byte(tc.data))
			if err == nil {
				t.Fatalf("no error; model %+v", m)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q is not %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

// TestXGBLoadErrorNamesFile checks LoadXGBoost puts the path in errors.
func TestXGBLoadErrorNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "model.txt")
	if err := os.WriteFile(p, []byte("tree\nversion=v4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadXGBoost(p)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
		t.Errorf("got %v, want ErrCorrupt naming %s", err, p)
	}
}

func FuzzXGBParse(f *testing.F) {
	// Seeded with the small fixtures only: the fuzzer minimizes every
	// interesting input, which is slow for 30 KB models.
	paths, _ := filepath.Glob("testdata/xgboost/*.model.json")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) <= 8<<10 {
			f.Add(data, uint64(1))
		}
	}
	f.Add([]byte(xgbTinyModel("reg:squarederror", "0", 2, 0, nil, xgbStump(1, "0.5", 1, "1", "2"))), uint64(2))
	f.Add([]byte(xgbTinyModel("multi:softmax", "[0,0,0]", 1, 3, []int{0, 1, 2},
		xgbStump(0, "0", 0, "1", "0"), xgbStump(0, "1", 0, "0", "2"), xgbLeafTree)), uint64(3))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		m, err := ParseXGBoost(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error of no kind: %v", err)
			}
			return
		}
		nf := m.(*xgbModel).nfeat
		if nf > 1<<12 {
			return // valid, but too wide to score quickly here
		}
		if len(m.Features()) != nf {
			t.Fatalf("%d feature names for %d features", len(m.Features()), nf)
		}
		rng := rand.New(rand.NewPCG(seed, 1))
		n := 1 + rng.IntN(64)
		x := make([]float32, n*nf)
		specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, -0.0}
		for i := range x {
			if rng.IntN(8) == 0 {
				x[i] = specials[rng.IntN(len(specials))]
			} else {
				x[i] = float32(rng.NormFloat64())
			}
		}
		out := make([]float64, n*m.(*xgbModel).MarginOutputs())
		if err := m.Predict(x, n, out); err != nil {
			t.Fatal(err)
		}
		if err := m.Margin(x, n, out); err != nil {
			t.Fatal(err)
		}
	})
}
