package infer

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lgbSyntheticModel writes a deterministic LightGBM text model: trees grown
// leaf-wise by splitting a random leaf until each has the given number of
// leaves, random features and N(0,1) thresholds, a mix of missing types.
func lgbSyntheticModel(trees, leaves, feats int, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 0x1b9))
	var sb strings.Builder
	names := make([]string, feats)
	infos := make([]string, feats)
	for i := range names {
		names[i] = "f" + strconv.Itoa(i)
		infos[i] = "[-5:5]"
	}
	fmt.Fprintf(&sb, "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=%d\n", feats-1)
	fmt.Fprintf(&sb, "objective=binary sigmoid:1\nfeature_names=%s\nfeature_infos=%s\n\n", strings.Join(names, " "), strings.Join(infos, " "))
	ints := func(v []int) string {
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = strconv.Itoa(x)
		}
		return strings.Join(s, " ")
	}
	floats := func(v []float64) string {
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = strconv.FormatFloat(x, 'g', 17, 64)
		}
		return strings.Join(s, " ")
	}
	for t := range trees {
		ni := leaves - 1
		left, right := make([]int, ni), make([]int, ni)
		feat, dt := make([]int, ni), make([]int, ni)
		thr, gain := make([]float64, ni), make([]float64, ni)
		// parent slot of each leaf: node*2 (+1 for right), -1 for the root.
		slot := []int{-1}
		for s := range ni {
			l := rng.IntN(len(slot))
			if p := slot[l]; p >= 0 {
				if p%2 == 0 {
					left[p/2] = s
				} else {
					right[p/2] = s
				}
			}
			left[s], right[s] = ^l, ^(s + 1)
			slot[l] = 2 * s
			slot = append(slot, 2*s+1)
			feat[s] = rng.IntN(feats)
			thr[s] = rng.NormFloat64()
			gain[s] = 1
			dt[s] = []int{2, 2, 0, 8, 10}[rng.IntN(5)]
		}
		lv := make([]float64, leaves)
		for i := range lv {
			lv[i] = rng.NormFloat64() * 0.01
		}
		fmt.Fprintf(&sb, "Tree=%d\nnum_leaves=%d\nnum_cat=0\nsplit_feature=%s\nsplit_gain=%s\nthreshold=%s\ndecision_type=%s\nleft_child=%s\nright_child=%s\nleaf_value=%s\nis_linear=0\nshrinkage=0.1\n\n\n",
			t, leaves, ints(feat), floats(gain), floats(thr), ints(dt), ints(left), ints(right), floats(lv))
	}
	sb.WriteString("end of trees\n")
	return sb.String()
}

// lgbBenchRows is deterministic N(0,1) input with 1% NaN.
func lgbBenchRows(n, feats int) []float32 {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*feats)
	for i := range x {
		if rng.IntN(100) == 0 {
			x[i] = float32(math.NaN())
		} else {
			x[i] = float32(rng.NormFloat64())
		}
	}
	return x
}

const (
	lgbBenchTrees  = 500
	lgbBenchLeaves = 255
	lgbBenchFeats  = 50
	lgbBenchN      = 100_000
)

func BenchmarkLGB(b *testing.B) {
	m, err := ParseLightGBM([]byte(lgbSyntheticModel(lgbBenchTrees, lgbBenchLeaves, lgbBenchFeats, 42)))
	if err != nil {
		b.Fatal(err)
	}
	x := lgbBenchRows(lgbBenchN, lgbBenchFeats)
	out := make([]float64, lgbBenchN)
	b.Run(fmt.Sprintf("model=lgb%d,leaves=%d,rows=%d", lgbBenchTrees, lgbBenchLeaves, lgbBenchN), func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(4 * len(x)))
		start := time.Now()
		for b.Loop() {
			if err := m.Predict(x, lgbBenchN, out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)*lgbBenchN/time.Since(start).Seconds(), "rows/s")
	})
}

// TestLGBWriteBenchModel writes the benchmark's model, input and our raw
// scores to $LIMINAL_LGB_BENCH_DIR so that make_fixtures.py bench can time
// LightGBM on the same model and data and check its scores against ours.
func TestLGBWriteBenchModel(t *testing.T) {
	dir := os.Getenv("LIMINAL_LGB_BENCH_DIR")
	if dir == "" {
		t.Skip("LIMINAL_LGB_BENCH_DIR not set")
	}
	text := lgbSyntheticModel(lgbBenchTrees, lgbBenchLeaves, lgbBenchFeats, 42)
	m, err := ParseLightGBM([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	x := lgbBenchRows(lgbBenchN, lgbBenchFeats)
	out := make([]float64, lgbBenchN)
	if err := m.Margin(x, lgbBenchN, out); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.txt"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	xb, err := binary.Append(nil, binary.LittleEndian, x)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := binary.Append(nil, binary.LittleEndian, out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x.f32"), xb, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "margin.f64"), ob, 0o644); err != nil {
		t.Fatal(err)
	}
}
