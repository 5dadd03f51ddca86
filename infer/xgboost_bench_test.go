package infer

import (
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// -xgb.dump DIR writes the benchmark model (xgb_bench.model.json) and rows
// (xgb_bench.rows.f32, little-endian float32, row-major) to DIR so
// make_fixtures.py --bench can time XGBoost on the same input.
var xgbDumpDir = flag.String("xgb.dump", "", "write the XGBoost benchmark model and rows to this directory")

// xgbJSONFloat marshals as a JSON number with a fraction or exponent:
// XGBoost's JSON reader rejects integers where it expects floats.
type xgbJSONFloat float32

func (f xgbJSONFloat) MarshalJSON() ([]byte, error) {
	s := strconv.FormatFloat(float64(f), 'g', -1, 32)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return []byte(s), nil
}

// xgbSyntheticModel returns a random but valid XGBoost JSON model: trees
// complete binary trees of the given depth over nf features, binary:logistic.
func xgbSyntheticModel(seed uint64, trees, depth, nf int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0xb00))
	type tree struct {
		BaseWeights     []xgbJSONFloat    `json:"base_weights"`
		Categories      []int             `json:"categories"`
		CategoriesNodes []int             `json:"categories_nodes"`
		CategoriesSeg   []int             `json:"categories_segments"`
		CategoriesSizes []int             `json:"categories_sizes"`
		DefaultLeft     []int             `json:"default_left"`
		ID              int               `json:"id"`
		LeftChildren    []int             `json:"left_children"`
		LossChanges     []xgbJSONFloat    `json:"loss_changes"`
		Parents         []int             `json:"parents"`
		RightChildren   []int             `json:"right_children"`
		SplitConditions []xgbJSONFloat    `json:"split_conditions"`
		SplitIndices    []int             `json:"split_indices"`
		SplitType       []int             `json:"split_type"`
		SumHessian      []xgbJSONFloat    `json:"sum_hessian"`
		TreeParam       map[string]string `json:"tree_param"`
	}
	nodes := 1<<(depth+1) - 1
	ts := make([]tree, trees)
	info := make([]int, trees)
	for t := range ts {
		tr := tree{ID: t, Categories: []int{}, CategoriesNodes: []int{}, CategoriesSeg: []int{}, CategoriesSizes: []int{}}
		for i := 0; i < nodes; i++ {
			internal := 2*i+1 < nodes
			l, r, parent := -1, -1, 2147483647
			if internal {
				l, r = 2*i+1, 2*i+2
			}
			if i > 0 {
				parent = (i - 1) / 2
			}
			var cond float32
			feat := 0
			if internal {
				feat = rng.IntN(nf)
				cond = float32(rng.NormFloat64())
			} else {
				cond = float32(rng.NormFloat64() * 0.01)
			}
			tr.LeftChildren = append(tr.LeftChildren, l)
			tr.RightChildren = append(tr.RightChildren, r)
			tr.Parents = append(tr.Parents, parent)
			tr.SplitIndices = append(tr.SplitIndices, feat)
			tr.SplitConditions = append(tr.SplitConditions, xgbJSONFloat(cond))
			tr.DefaultLeft = append(tr.DefaultLeft, rng.IntN(2))
			tr.SplitType = append(tr.SplitType, 0)
			tr.BaseWeights = append(tr.BaseWeights, xgbJSONFloat(cond))
			tr.LossChanges = append(tr.LossChanges, 0)
			tr.SumHessian = append(tr.SumHessian, 1)
		}
		tr.TreeParam = map[string]string{"num_deleted": "0", "num_feature": strconv.Itoa(nf),
			"num_nodes": strconv.Itoa(nodes), "size_leaf_vector": "1"}
		ts[t] = tr
	}
	indptr := make([]int, trees+1)
	for i := range indptr {
		indptr[i] = i
	}
	doc := map[string]any{
		"version": []int{3, 2, 0},
		"learner": map[string]any{
			"attributes":    map[string]any{},
			"feature_names": []string{},
			"feature_types": []string{},
			"gradient_booster": map[string]any{
				"name": "gbtree",
				"model": map[string]any{
					"cats":               map[string]any{"enc": []int{}, "feature_segments": []int{}, "sorted_idx": []int{}},
					"gbtree_model_param": map[string]string{"num_parallel_tree": "1", "num_trees": strconv.Itoa(trees)},
					"iteration_indptr":   indptr,
					"tree_info":          info,
					"trees":              ts,
				},
			},
			"learner_model_param": map[string]string{"base_score": "[5E-1]", "boost_from_average": "1",
				"num_class": "0", "num_feature": strconv.Itoa(nf), "num_target": "1"},
			"objective": map[string]any{"name": "binary:logistic",
				"reg_loss_param": map[string]string{"scale_pos_weight": "1"}},
		},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return data
}

// xgbSyntheticRows returns n*nf standard normal values, 5% NaN.
func xgbSyntheticRows(seed uint64, n, nf int) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0xda7a))
	x := make([]float32, n*nf)
	for i := range x {
		if rng.IntN(20) == 0 {
			x[i] = float32(math.NaN())
		} else {
			x[i] = float32(rng.NormFloat64())
		}
	}
	return x
}

func BenchmarkXGB(b *testing.B) {
	const trees, depth, nf, rows = 500, 8, 50, 100_000
	data := xgbSyntheticModel(1, trees, depth, nf)
	m, err := ParseXGBoost(data)
	if err != nil {
		b.Fatal(err)
	}
	x := xgbSyntheticRows(2, rows, nf)
	if dir := *xgbDumpDir; dir != "" {
		buf := make([]byte, 4*len(x))
		for i, v := range x {
			u := math.Float32bits(v)
			buf[4*i], buf[4*i+1], buf[4*i+2], buf[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
		}
		if err := os.WriteFile(dir+"/xgb_bench.model.json", data, 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(dir+"/xgb_bench.rows.f32", buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	out := make([]float64, rows)
	if dir := *xgbDumpDir; dir != "" {
		xgbCheckBenchPreds(b, m, x, rows, dir+"/xgb_bench.pred.f32")
	}
	b.Run("model=xgb500d8,rows=100k", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(x) * 4))
		for b.Loop() {
			if err := m.Predict(x, rows, out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

func BenchmarkXGBParse(b *testing.B) {
	data := xgbSyntheticModel(1, 500, 8, 50)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseXGBoost(data); err != nil {
			b.Fatal(err)
		}
	}
}

// xgbCheckBenchPreds compares Predict with XGBoost's predictions written by
// make_fixtures.py --bench (little-endian float32), when that file exists.
func xgbCheckBenchPreds(b *testing.B, m Trees, x []float32, rows int, path string) {
	buf, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b.Logf("%s not found: run make_fixtures.py --bench to compare with XGBoost", path)
		return
	}
	if err != nil {
		b.Fatal(err)
	}
	if len(buf) != 4*rows {
		b.Fatalf("%s: %d bytes for %d rows", path, len(buf), rows)
	}
	out := make([]float64, rows)
	if err := m.Predict(x, rows, out); err != nil {
		b.Fatal(err)
	}
	bad, worst := 0, 0.0
	for i := range out {
		u := uint32(buf[4*i]) | uint32(buf[4*i+1])<<8 | uint32(buf[4*i+2])<<16 | uint32(buf[4*i+3])<<24
		want := float64(math.Float32frombits(u))
		d := math.Abs(out[i]-want) / max(1, math.Abs(want))
		worst = max(worst, d)
		if d > 1e-6 {
			bad++
		}
	}
	b.Logf("vs XGBoost: %d of %d rows differ by more than 1e-6, worst relative difference %g", bad, rows, worst)
	if bad > 0 {
		b.Fail()
	}
}
