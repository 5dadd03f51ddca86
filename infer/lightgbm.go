package infer

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// LightGBM text model support (booster.save_model("m.txt"), LightGBM 4.x).
//
// Decisions follow LightGBM's predictor exactly:
//   - the dense-matrix predictor drops values with |x| <= kZeroThreshold,
//     so they are seen as 0.0;
//   - numerical split, missing type None: NaN is taken as 0.0;
//     Zero: 0.0 (after the rule above) and NaN take the default direction;
//     NaN: NaN takes the default direction; otherwise left iff x <= threshold
//     (double comparison);
//   - categorical split: NaN and negative values go right; others are
//     truncated to int and go left iff their bit is set in the split's bitset.

// lgbZeroThreshold is LightGBM's kZeroThreshold (declared as 1e-35f).
var lgbZeroThreshold = float64(float32(1e-35))

// Decision type bits of the text format.
const (
	lgbCategoricalMask = 1
	lgbDefaultLeftMask = 2
	lgbMissingNone     = 0
	lgbMissingZero     = 1
	lgbMissingNaN      = 2
)

// lgbNode flags. A node without lgbFlagSlow is a numerical split of missing
// type None or NaN whose threshold is outside the near-zero band: it is
// decided by x <= thr, with NaN going to its precomputed NaN child.
const (
	lgbFlagSlow        = 1 << 0 // needs slowDecide
	lgbFlagCategorical = 1 << 1
	lgbFlagDefaultLeft = 1 << 2
	lgbFlagZeroMissing = 1 << 3 // missing type Zero
	lgbFlagNaNMissing  = 1 << 4 // missing type NaN
)

// lgbBlockRows is the number of rows evaluated per tree before moving to
// the next tree, so that one tree's nodes stay in cache for the block.
const lgbBlockRows = 128

// lgbNode is one node of the flattened forest (32 bytes). Children are
// global node indices: kids holds left, right, and twice the child NaN
// takes on the fast path. Each tree's leaves follow its internal nodes
// (index >= lgbTree.leaf0; their children are themselves) and their values
// are in lgbModel.vals. A categorical node keeps its global bitset index
// in thr.
type lgbNode struct {
	thr   float64
	feat  int32
	flags uint32
	kids  [4]int32
}

// lgbTree locates one tree in the flat arrays.
type lgbTree struct {
	root  int32
	leaf0 int32 // first leaf node: nodes >= leaf0 are this tree's leaves
	slow  bool  // has nodes that need slowDecide
}

// lgbModel is a parsed LightGBM model; immutable and safe for concurrent use.
type lgbModel struct {
	features   []string
	nFeat      int
	nOut       int // outputs per row (num_tree_per_iteration)
	nodes      []lgbNode
	vals       []float64 // per node: leaf value (0 for internal nodes)
	trees      []lgbTree
	catBits    []uint32
	catBounds  []int32 // pairs: start, end into catBits
	objective  string
	transform  lgbTransform
	sigmoid    float64
	averageOut bool
	iterations int
}

type lgbTransform int

const (
	lgbIdentity lgbTransform = iota
	lgbSqrt                  // regression sqrt: sign(x)*x*x
	lgbSigmoid               // binary, multiclassova, cross_entropy
	lgbSoftmax
	lgbExp      // poisson, gamma, tweedie
	lgbLog1pExp // cross_entropy_lambda
)

var _ Trees = (*lgbModel)(nil)

// LoadLightGBM reads a LightGBM text model file (booster.save_model).
func LoadLightGBM(path string) (Trees, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load lightgbm model: %w", err)
	}
	t, err := ParseLightGBM(data)
	if err != nil {
		return nil, fmt.Errorf("load lightgbm model %s: %w", path, err)
	}
	return t, nil
}

// lgbLines iterates over the lines of a model file.
type lgbLines struct {
	data []byte
	line int
}

func (l *lgbLines) next() (string, bool) {
	if len(l.data) == 0 {
		return "", false
	}
	i := bytes.IndexByte(l.data, '\n')
	var s []byte
	if i < 0 {
		s, l.data = l.data, nil
	} else {
		s, l.data = l.data[:i], l.data[i+1:]
	}
	l.line++
	return strings.TrimRight(string(s), "\r \t"), true
}

// ParseLightGBM parses a LightGBM text model (the output of
// booster.save_model or booster.model_to_string).
func ParseLightGBM(data []byte) (Trees, error) {
	if len(data) == 0 {
		return nil, corruptf("lightgbm: empty model")
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return nil, corruptf("lightgbm: input looks like JSON (an XGBoost or LightGBM JSON dump?), want LightGBM text model from save_model")
	}
	lines := &lgbLines{data: data}
	first, _ := lines.next()
	if first != "tree" {
		return nil, corruptf("lightgbm: line 1: want %q, got %.40q: not a LightGBM text model", "tree", first)
	}

	// Header: key=value lines until the first Tree= line.
	hdr := map[string]string{}
	var line string
	var ok bool
	for {
		line, ok = lines.next()
		if !ok {
			return nil, corruptf("lightgbm: no trees (file truncated?)")
		}
		if strings.HasPrefix(line, "Tree=") || line == "end of trees" {
			break
		}
		if line == "" {
			continue
		}
		k, v, has := strings.Cut(line, "=")
		if !has {
			// Key without value, e.g. "average_output".
			hdr[line] = ""
			continue
		}
		hdr[k] = v
	}

	m := &lgbModel{}
	numClass, err := lgbHeaderInt(hdr, "num_class", true, 0)
	if err != nil {
		return nil, err
	}
	perIter, err := lgbHeaderInt(hdr, "num_tree_per_iteration", false, numClass)
	if err != nil {
		return nil, err
	}
	maxFeat, err := lgbHeaderInt(hdr, "max_feature_idx", true, 0)
	if err != nil {
		return nil, err
	}
	if numClass < 1 || numClass > 1<<16 {
		return nil, corruptf("lightgbm: num_class=%d out of range", numClass)
	}
	if perIter < 1 || perIter > 1<<16 {
		return nil, corruptf("lightgbm: num_tree_per_iteration=%d out of range", perIter)
	}
	if maxFeat < 0 || maxFeat > 1<<24 {
		return nil, corruptf("lightgbm: max_feature_idx=%d out of range", maxFeat)
	}
	m.nFeat = maxFeat + 1
	m.nOut = perIter
	names, has := hdr["feature_names"]
	if !has {
		return nil, corruptf("lightgbm: header has no feature_names")
	}
	m.features = strings.Fields(names)
	if len(m.features) != m.nFeat {
		return nil, corruptf("lightgbm: feature_names has %d names, max_feature_idx=%d wants %d", len(m.features), maxFeat, m.nFeat)
	}
	_, m.averageOut = hdr["average_output"]
	if err := m.setObjective(hdr["objective"], numClass, perIter); err != nil {
		return nil, err
	}

	// Trees.
	for strings.HasPrefix(line, "Tree=") {
		idx, err := strconv.Atoi(strings.TrimPrefix(line, "Tree="))
		if err != nil || idx != len(m.trees) {
			return nil, corruptf("lightgbm: line %d: %q: want Tree=%d", lines.line, line, len(m.trees))
		}
		kv := map[string]string{}
		for {
			line, ok = lines.next()
			if !ok {
				return nil, corruptf("lightgbm: tree %d: file ends before \"end of trees\" (truncated?)", idx)
			}
			if strings.HasPrefix(line, "Tree=") || line == "end of trees" {
				break
			}
			if line == "" {
				continue
			}
			k, v, has := strings.Cut(line, "=")
			if !has {
				return nil, corruptf("lightgbm: tree %d: line %d: want key=value, got %.40q", idx, lines.line, line)
			}
			kv[k] = v
		}
		if err := m.addTree(idx, kv); err != nil {
			return nil, err
		}
	}
	if line != "end of trees" {
		return nil, corruptf("lightgbm: missing \"end of trees\" (truncated?)")
	}
	if len(m.trees) == 0 {
		return nil, corruptf("lightgbm: model has no trees")
	}
	if len(m.trees)%m.nOut != 0 {
		return nil, corruptf("lightgbm: %d trees is not a multiple of num_tree_per_iteration=%d", len(m.trees), m.nOut)
	}
	m.iterations = len(m.trees) / m.nOut
	return m, nil
}

func lgbHeaderInt(hdr map[string]string, key string, required bool, def int) (int, error) {
	v, ok := hdr[key]
	if !ok {
		if required {
			return 0, corruptf("lightgbm: header has no %s", key)
		}
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, corruptf("lightgbm: header %s=%.40q: not an integer", key, v)
	}
	return n, nil
}

func (m *lgbModel) setObjective(obj string, numClass, perIter int) error {
	fields := strings.Fields(obj)
	m.objective = obj
	m.sigmoid = 1
	name := ""
	if len(fields) > 0 {
		name = fields[0]
	}
	sqrt := false
	objClasses := 0
	for _, f := range fields[min(1, len(fields)):] {
		k, v, _ := strings.Cut(f, ":")
		switch k {
		case "sqrt":
			sqrt = true
		case "sigmoid":
			s, err := strconv.ParseFloat(v, 64)
			if err != nil || !(s > 0) || math.IsInf(s, 0) {
				return corruptf("lightgbm: objective %q: bad sigmoid %q", obj, v)
			}
			m.sigmoid = s
		case "num_class":
			n, err := strconv.Atoi(v)
			if err != nil {
				return corruptf("lightgbm: objective %q: bad num_class %q", obj, v)
			}
			objClasses = n
		}
	}
	multi := name == "multiclass" || name == "softmax" || name == "multiclassova" || name == "multiclass_ova" || name == "ova" || name == "ovr"
	if !multi && perIter != 1 {
		return corruptf("lightgbm: objective %q with num_tree_per_iteration=%d", obj, perIter)
	}
	if multi {
		if perIter != numClass || (objClasses != 0 && objClasses != numClass) {
			return corruptf("lightgbm: objective %q disagrees with num_class=%d, num_tree_per_iteration=%d", obj, numClass, perIter)
		}
	}
	switch name {
	case "", "none", "null", "custom", "na":
		m.transform = lgbIdentity
	case "regression", "regression_l2", "l2", "mean_squared_error", "mse", "l2_root", "root_mean_squared_error", "rmse",
		"regression_l1", "l1", "mean_absolute_error", "mae", "huber", "fair", "quantile", "mape", "mean_absolute_percentage_error":
		m.transform = lgbIdentity
		if sqrt {
			m.transform = lgbSqrt
		}
	case "lambdarank", "rank_xendcg", "xendcg", "xe_ndcg", "xe_ndcg_mart", "xendcg_mart":
		m.transform = lgbIdentity
	case "binary", "multiclassova", "multiclass_ova", "ova", "ovr":
		m.transform = lgbSigmoid
	case "cross_entropy", "xentropy":
		m.transform = lgbSigmoid
		m.sigmoid = 1
	case "cross_entropy_lambda", "xentlambda":
		m.transform = lgbLog1pExp
	case "multiclass", "softmax":
		m.transform = lgbSoftmax
	case "poisson", "gamma", "tweedie":
		m.transform = lgbExp
	default:
		return unsupportedf("lightgbm: objective %q", obj)
	}
	return nil
}

// lgbNumbers parses key's n space-separated numbers of one tree.
func lgbNumbers[T any](kv map[string]string, tree int, key string, n int, parse func(string) (T, error)) ([]T, error) {
	v, ok := kv[key]
	if !ok {
		return nil, corruptf("lightgbm: tree %d: no %s", tree, key)
	}
	f := strings.Fields(v)
	if len(f) != n {
		return nil, corruptf("lightgbm: tree %d: %s has %d values, want %d", tree, key, len(f), n)
	}
	out := make([]T, n)
	for i, s := range f {
		x, err := parse(s)
		if err != nil {
			return nil, corruptf("lightgbm: tree %d: %s[%d]=%.40q: not a number", tree, key, i, s)
		}
		out[i] = x
	}
	return out, nil
}

func lgbInts(kv map[string]string, tree int, key string, n int) ([]int, error) {
	return lgbNumbers(kv, tree, key, n, strconv.Atoi)
}

func lgbFloats(kv map[string]string, tree int, key string, n int) ([]float64, error) {
	return lgbNumbers(kv, tree, key, n, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
}

// addTree validates one Tree= block and appends it to the flat arrays.
func (m *lgbModel) addTree(idx int, kv map[string]string) error {
	if v, ok := kv["is_linear"]; ok && strings.TrimSpace(v) != "0" {
		return unsupportedf("lightgbm: tree %d: linear trees (is_linear=%s, linear_tree=true) are not evaluated", idx, v)
	}
	nl, ok := kv["num_leaves"]
	if !ok {
		return corruptf("lightgbm: tree %d: no num_leaves", idx)
	}
	numLeaves, err := strconv.Atoi(nl)
	if err != nil || numLeaves < 1 || numLeaves > 1<<24 {
		return corruptf("lightgbm: tree %d: num_leaves=%.40q out of range", idx, nl)
	}
	numCat := 0
	if v, ok := kv["num_cat"]; ok {
		numCat, err = strconv.Atoi(v)
		if err != nil || numCat < 0 || numCat > numLeaves {
			return corruptf("lightgbm: tree %d: num_cat=%.40q out of range", idx, v)
		}
	}
	leafVals, err := lgbFloats(kv, idx, "leaf_value", numLeaves)
	if err != nil {
		return err
	}
	nodeBase := len(m.nodes)
	if nodeBase+2*numLeaves > math.MaxInt32 {
		return corruptf("lightgbm: tree %d: model too large", idx)
	}
	if numLeaves == 1 {
		m.addLeaves(leafVals)
		m.trees = append(m.trees, lgbTree{root: int32(nodeBase), leaf0: int32(nodeBase)})
		return nil
	}
	ni := numLeaves - 1
	feats, err := lgbInts(kv, idx, "split_feature", ni)
	if err != nil {
		return err
	}
	thr, err := lgbFloats(kv, idx, "threshold", ni)
	if err != nil {
		return err
	}
	dt, err := lgbInts(kv, idx, "decision_type", ni)
	if err != nil {
		return err
	}
	lc, err := lgbInts(kv, idx, "left_child", ni)
	if err != nil {
		return err
	}
	rc, err := lgbInts(kv, idx, "right_child", ni)
	if err != nil {
		return err
	}
	var bounds []int
	var bits []int
	if numCat > 0 {
		if bounds, err = lgbInts(kv, idx, "cat_boundaries", numCat+1); err != nil {
			return err
		}
		if bounds[0] != 0 {
			return corruptf("lightgbm: tree %d: cat_boundaries[0]=%d, want 0", idx, bounds[0])
		}
		for i := 1; i <= numCat; i++ {
			if bounds[i] < bounds[i-1] || bounds[i] > 1<<24 {
				return corruptf("lightgbm: tree %d: cat_boundaries not increasing at %d", idx, i)
			}
		}
		if bits, err = lgbInts(kv, idx, "cat_threshold", bounds[numCat]); err != nil {
			return err
		}
	}

	// Every internal node but the root and every leaf must be referenced
	// exactly once: then a walk from the root ends at a leaf in < ni steps.
	seenNode := make([]bool, ni)
	seenLeaf := make([]bool, numLeaves)
	ref := func(i int, c int) error {
		switch {
		case c >= 0:
			if c >= ni || c == 0 {
				return corruptf("lightgbm: tree %d: node %d: child %d out of range", idx, i, c)
			}
			if seenNode[c] {
				return corruptf("lightgbm: tree %d: node %d referenced twice", idx, c)
			}
			seenNode[c] = true
		default:
			l := ^c
			if l >= numLeaves {
				return corruptf("lightgbm: tree %d: node %d: leaf %d out of range (num_leaves=%d)", idx, i, l, numLeaves)
			}
			if seenLeaf[l] {
				return corruptf("lightgbm: tree %d: leaf %d referenced twice", idx, l)
			}
			seenLeaf[l] = true
		}
		return nil
	}
	global := func(c int) int32 {
		if c >= 0 {
			return int32(nodeBase + c)
		}
		return int32(nodeBase + ni + ^c)
	}
	catBase := len(m.catBounds) / 2
	for i := 0; i < ni; i++ {
		if err := ref(i, lc[i]); err != nil {
			return err
		}
		if err := ref(i, rc[i]); err != nil {
			return err
		}
		if feats[i] < 0 || feats[i] >= m.nFeat {
			return corruptf("lightgbm: tree %d: node %d: split_feature %d > max_feature_idx %d", idx, i, feats[i], m.nFeat-1)
		}
		d := dt[i]
		if d < 0 || d > 15 {
			return corruptf("lightgbm: tree %d: node %d: decision_type %d invalid", idx, i, d)
		}
		left, right := global(lc[i]), global(rc[i])
		n := lgbNode{thr: thr[i], feat: int32(feats[i]), kids: [4]int32{left, right, right, right}}
		nanTo := func(c int32) { n.kids[2], n.kids[3] = c, c }
		missing := (d >> 2) & 3
		if d&lgbDefaultLeftMask != 0 {
			n.flags |= lgbFlagDefaultLeft
		}
		if d&lgbCategoricalMask != 0 {
			ci := thr[i]
			if !(ci >= 0 && ci < float64(numCat)) {
				return corruptf("lightgbm: tree %d: node %d: categorical threshold %v out of range (num_cat=%d)", idx, i, ci, numCat)
			}
			n.flags |= lgbFlagSlow | lgbFlagCategorical
			n.thr = float64(catBase + int(ci))
		} else {
			if math.IsNaN(thr[i]) {
				return corruptf("lightgbm: tree %d: node %d: threshold is NaN", idx, i)
			}
			switch missing {
			case lgbMissingNone:
				// NaN becomes 0.0: goes left iff 0 <= threshold.
				if 0 <= thr[i] {
					nanTo(left)
				}
			case lgbMissingZero:
				n.flags |= lgbFlagSlow | lgbFlagZeroMissing
			case lgbMissingNaN:
				n.flags |= lgbFlagNaNMissing
				if d&lgbDefaultLeftMask != 0 {
					nanTo(left)
				}
			default:
				return corruptf("lightgbm: tree %d: node %d: decision_type %d has missing type 3", idx, i, d)
			}
			// Values with |x| <= kZeroThreshold are read as 0.0.
			if thr[i] >= -lgbZeroThreshold && thr[i] < lgbZeroThreshold {
				n.flags |= lgbFlagSlow
			}
		}
		m.nodes = append(m.nodes, n)
	}
	for l, s := range seenLeaf {
		if !s {
			return corruptf("lightgbm: tree %d: leaf %d unreachable", idx, l)
		}
	}
	for i := 1; i < ni; i++ {
		if !seenNode[i] {
			return corruptf("lightgbm: tree %d: node %d unreachable", idx, i)
		}
	}
	for c := 0; c < numCat; c++ {
		start := len(m.catBits)
		for _, b := range bits[bounds[c]:bounds[c+1]] {
			if b < 0 || b > math.MaxUint32 {
				return corruptf("lightgbm: tree %d: cat_threshold value %d out of range", idx, b)
			}
			m.catBits = append(m.catBits, uint32(b))
		}
		m.catBounds = append(m.catBounds, int32(start), int32(len(m.catBits)))
	}
	m.vals = append(m.vals, make([]float64, ni)...)
	m.addLeaves(leafVals)
	tr := lgbTree{root: int32(nodeBase), leaf0: int32(nodeBase + ni)}
	for _, n := range m.nodes[nodeBase : nodeBase+ni] {
		if n.flags&lgbFlagSlow != 0 {
			tr.slow = true
		}
	}
	m.trees = append(m.trees, tr)
	return nil
}

// addLeaves appends leaf pseudo-nodes (children: themselves).
func (m *lgbModel) addLeaves(vals []float64) {
	for range vals {
		self := int32(len(m.nodes))
		m.nodes = append(m.nodes, lgbNode{kids: [4]int32{self, self, self, self}})
	}
	m.vals = append(m.vals, vals...)
}

// Features returns the model's feature names in column order; the slice is
// shared and must not be modified.
func (m *lgbModel) Features() []string { return m.features }

// Outputs returns the number of values per row.
func (m *lgbModel) Outputs() int { return m.nOut }

// MarginOutputs implements Trees: one raw score per output.
func (m *lgbModel) MarginOutputs() int { return m.Outputs() }

// Margin computes raw scores (sum of leaf values per output).
func (m *lgbModel) Margin(x []float32, n int, out []float64) error {
	if err := m.check(x, n, out); err != nil {
		return err
	}
	m.margin(x, n, out)
	return nil
}

// Predict computes scores after the objective's output transform.
func (m *lgbModel) Predict(x []float32, n int, out []float64) error {
	if err := m.check(x, n, out); err != nil {
		return err
	}
	m.margin(x, n, out)
	m.transformOut(out[:n*m.nOut])
	return nil
}

func (m *lgbModel) check(x []float32, n int, out []float64) error {
	if n < 0 {
		return fmt.Errorf("lightgbm: negative row count %d", n)
	}
	if len(x) < n*m.nFeat {
		return fmt.Errorf("lightgbm: x has %d values, %d rows of %d features need %d", len(x), n, m.nFeat, n*m.nFeat)
	}
	if len(out) < n*m.nOut {
		return fmt.Errorf("lightgbm: out has %d values, %d rows of %d outputs need %d", len(out), n, m.nOut, n*m.nOut)
	}
	return nil
}

func (m *lgbModel) transformOut(out []float64) {
	switch m.transform {
	case lgbSqrt:
		for i, v := range out {
			if v < 0 {
				out[i] = -v * v
			} else if v > 0 {
				out[i] = v * v
			} else {
				out[i] = 0
			}
		}
	case lgbSigmoid:
		s := m.sigmoid
		for i, v := range out {
			out[i] = 1 / (1 + math.Exp(-s*v))
		}
	case lgbExp:
		for i, v := range out {
			out[i] = math.Exp(v)
		}
	case lgbLog1pExp:
		for i, v := range out {
			out[i] = math.Log1p(math.Exp(v))
		}
	case lgbSoftmax:
		k := m.nOut
		for r := 0; r+k <= len(out); r += k {
			row := out[r : r+k]
			mx := row[0]
			for _, v := range row[1:] {
				if v > mx {
					mx = v
				}
			}
			sum := 0.0
			for j, v := range row {
				e := math.Exp(v - mx)
				row[j] = e
				sum += e
			}
			for j := range row {
				row[j] /= sum
			}
		}
	}
}

// margin sums leaf values into out, block by block: for each block of rows,
// every tree (in tree order) walks all rows of the block, one level of all
// unfinished rows at a time, so that the independent walks overlap in the
// CPU and the tree's nodes stay in cache. Sums are float64, in tree order.
func (m *lgbModel) margin(x []float32, n int, out []float64) {
	k := m.nOut
	nf := m.nFeat
	clear(out[:n*k])
	nodes := m.nodes
	vals := m.vals
	var cur, act [lgbBlockRows]int32
	for start := 0; start < n; start += lgbBlockRows {
		end := min(start+lgbBlockRows, n)
		rows := end - start
		bx := x[start*nf : end*nf]
		bo := out[start*k : end*k]
		for t, tr := range m.trees {
			cls := t % k
			c := cur[:rows]
			for r := range c {
				c[r] = tr.root
			}
			if tr.root < tr.leaf0 {
				if tr.slow {
					m.walkSlow(tr.leaf0, c, act[:rows], bx)
				} else {
					lgbWalkFast(nodes, tr.leaf0, c, act[:rows], bx, nf)
				}
			}
			for r, o := 0, cls; o < len(bo); r, o = r+1, o+k {
				bo[o] += vals[c[r]]
			}
		}
		if m.averageOut {
			for i := range bo {
				bo[i] /= float64(m.iterations)
			}
		}
	}
}

// lgbWalkFast moves every row of a block (c: current node per row) down a
// tree that has no slow nodes until all are at leaves (nodes >= leaf0). The
// rows still walking are kept compacted in act, so each pass does one
// level of every unfinished row without a data-dependent branch.
func lgbWalkFast(nodes []lgbNode, leaf0 int32, c, act []int32, bx []float32, nf int) {
	for r := range act {
		act[r] = int32(r)
	}
	for len(act) > 0 {
		w := 0
		for _, r := range act {
			nd := &nodes[c[r]]
			v := float64(bx[int(r)*nf+int(nd.feat)])
			i := 0
			if v > nd.thr {
				i = 1
			}
			if v != v {
				i = 2
			}
			next := nd.kids[i&3]
			c[r] = next
			act[w] = r
			if next < leaf0 {
				w++
			}
		}
		act = act[:w]
	}
}

// walkSlow is lgbWalkFast for trees with categorical splits, missing type
// Zero or near-zero thresholds.
func (m *lgbModel) walkSlow(leaf0 int32, c, act []int32, bx []float32) {
	nodes, nf := m.nodes, m.nFeat
	for r := range act {
		act[r] = int32(r)
	}
	for len(act) > 0 {
		w := 0
		for _, r := range act {
			nd := &nodes[c[r]]
			f := bx[int(r)*nf+int(nd.feat)]
			v := float64(f)
			i := 0
			if v > nd.thr {
				i = 1
			}
			if v != v {
				i = 2
			}
			next := nd.kids[i&3]
			if nd.flags&lgbFlagSlow != 0 {
				next = m.slowDecide(nd, f)
			}
			c[r] = next
			act[w] = r
			if next < leaf0 {
				w++
			}
		}
		act = act[:w]
	}
}

// slowDecide is LightGBM's decision for nodes that need more than one
// comparison: categorical splits, missing types, near-zero thresholds.
func (m *lgbModel) slowDecide(nd *lgbNode, f32 float32) int32 {
	f := float64(f32)
	if math.Abs(f) <= lgbZeroThreshold {
		f = 0 // dropped by LightGBM's dense-row reader
	}
	if nd.flags&lgbFlagCategorical != 0 {
		// NaN, negative and (x86 static_cast overflow) huge values go right.
		if !(f > -1 && f < 2147483648) {
			return nd.kids[1]
		}
		c := uint32(int32(f))
		ci := int(nd.thr)
		b := m.catBounds[2*ci : 2*ci+2]
		w := c / 32
		if w < uint32(b[1]-b[0]) && m.catBits[uint32(b[0])+w]>>(c%32)&1 != 0 {
			return nd.kids[0]
		}
		return nd.kids[1]
	}
	isNaN := f != f
	switch {
	case nd.flags&lgbFlagZeroMissing != 0:
		if isNaN || f == 0 {
			return lgbDefault(nd)
		}
	case nd.flags&lgbFlagNaNMissing != 0:
		if isNaN {
			return lgbDefault(nd)
		}
	default:
		if isNaN {
			f = 0
		}
	}
	if f <= nd.thr {
		return nd.kids[0]
	}
	return nd.kids[1]
}

func lgbDefault(nd *lgbNode) int32 {
	if nd.flags&lgbFlagDefaultLeft != 0 {
		return nd.kids[0]
	}
	return nd.kids[1]
}
