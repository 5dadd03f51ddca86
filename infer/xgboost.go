package infer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
)

// XGBoost JSON models (booster.save_model("m.json"), XGBoost 2.x/3.x).
//
// Scoring follows XGBoost's CPU predictor bit for bit where it matters:
// thresholds and leaf values are float32, a row goes left when
// x < threshold (compared in float32) and follows default_left when x is
// NaN, margins start at the base score and accumulate leaf values in
// float32 in tree order, and the objective transforms (sigmoid, softmax,
// exp) are computed in float32.

// xgbMaxClasses bounds num_class (scratch space is xgbBlock*num_class).
const xgbMaxClasses = 1 << 12

// xgbBlock is the number of rows evaluated together: each tree walks all
// rows of a block before the next tree, so one tree's nodes stay in cache.
const xgbBlock = 128

// xgbNode is one node of the flattened ensemble. Children are adjacent:
// the left child is at left, the right child at left+1 (absolute indices
// into xgbModel.nodes). miss is the offset (0 left, 1 right) taken when
// the feature value is NaN. A leaf loops to itself (left is its own index,
// cond NaN, feat 0, miss 0), so a row can take more steps than its leaf's
// depth; its value is xgbModel.leaf[index].
type xgbNode struct {
	cond float32 // split threshold
	feat int32   // feature index
	left int32
	miss int32
}

type xgbObjective int

const (
	xgbIdentity xgbObjective = iota // reg:squarederror, binary:logitraw
	xgbSigmoid                      // reg:logistic, binary:logistic
	xgbExp                          // count:poisson
	xgbSoftprob                     // multi:softprob
	xgbSoftmax                      // multi:softmax
)

type xgbModel struct {
	features []string
	nfeat    int
	groups   int       // margins per row (1, or num_class)
	base     []float32 // margin base per group
	nodes    []xgbNode
	leaf     []float32 // leaf value per node (0 for internal nodes)
	roots    []int32   // root node of each tree
	group    []int32   // output group of each tree
	depth    []int32   // steps from the root to the deepest leaf
	walk     []bool    // tree is walked row by row (unbalanced) rather than level by level
	obj      xgbObjective
	scratch  sync.Pool // *xgbScratch
}

type xgbScratch struct {
	acc []float32 // xgbBlock*groups margins
	idx [xgbBlock]int32
}

var _ Trees = (*xgbModel)(nil)

// LoadXGBoost reads an XGBoost JSON model file (booster.save_model with a
// .json name). See ParseXGBoost.
func LoadXGBoost(path string) (Trees, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("xgboost model: %w", err)
	}
	t, err := ParseXGBoost(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseXGBoost parses an XGBoost JSON model (XGBoost 2.x/3.x gbtree
// boosters). Supported objectives: reg:squarederror, reg:logistic,
// binary:logistic, binary:logitraw, multi:softprob, multi:softmax and
// count:poisson. Other objectives, gblinear and dart boosters, categorical
// splits, multi-target trees and UBJSON files fail with ErrUnsupported;
// malformed or inconsistent models fail with ErrCorrupt.
//
// For multi:softmax, Outputs() is 1 and Predict writes the winning class
// index (as float64) per row, while Margin writes the num_class raw class
// scores per row (so its out needs n*num_class values).
func ParseXGBoost(data []byte) (Trees, error) {
	m, err := xgbParse(data)
	if err != nil {
		return nil, fmt.Errorf("xgboost model: %w", err)
	}
	return m, nil
}

// Features implements Trees. It returns a new slice on each call.
func (m *xgbModel) Features() []string {
	if m.features != nil {
		return append([]string(nil), m.features...)
	}
	names := make([]string, m.nfeat)
	for i := range names {
		names[i] = "f" + strconv.Itoa(i)
	}
	return names
}

// Outputs implements Trees.
func (m *xgbModel) Outputs() int {
	if m.obj == xgbSoftmax {
		return 1
	}
	return m.groups
}

// MarginOutputs is the number of raw scores per row Margin writes: the
// class count for multi-class models (including multi:softmax), else 1.
func (m *xgbModel) MarginOutputs() int { return m.groups }

// Predict implements Trees.
func (m *xgbModel) Predict(x []float32, n int, out []float64) error {
	return m.score(x, n, out, true)
}

// Margin implements Trees. For multi:softmax it writes MarginOutputs()
// (num_class) values per row.
func (m *xgbModel) Margin(x []float32, n int, out []float64) error {
	return m.score(x, n, out, false)
}

func (m *xgbModel) score(x []float32, n int, out []float64, transform bool) error {
	outs := m.groups
	if transform {
		outs = m.Outputs()
	}
	if n < 0 {
		return fmt.Errorf("xgboost: negative row count %d", n)
	}
	if m.nfeat > 0 && len(x)/m.nfeat < n {
		return fmt.Errorf("xgboost: %d rows of %d features need more than the %d values given", n, m.nfeat, len(x))
	}
	if len(out)/outs < n {
		return fmt.Errorf("xgboost: %d rows of %d outputs need more than the %d values given", n, outs, len(out))
	}
	if n == 0 {
		return nil
	}
	sc := m.scratch.Get().(*xgbScratch)
	for start := 0; start < n; start += xgbBlock {
		nb := min(xgbBlock, n-start)
		acc := sc.acc[:nb*m.groups]
		m.margins(x[start*m.nfeat:(start+nb)*m.nfeat], nb, acc, &sc.idx)
		m.finish(acc, nb, out[start*outs:(start+nb)*outs], transform)
	}
	m.scratch.Put(sc)
	return nil
}

// margins computes the raw scores of nb rows (nb <= xgbBlock) into acc
// (nb*groups, row-major). Each tree is evaluated for all rows of the block
// before the next tree, adding leaf values in tree order (as XGBoost does,
// in float32).
func (m *xgbModel) margins(x []float32, nb int, acc []float32, idx *[xgbBlock]int32) {
	g := m.groups
	for r := 0; r < nb; r++ {
		copy(acc[r*g:(r+1)*g], m.base)
	}
	nodes, leaf := m.nodes, m.leaf
	nf := m.nfeat
	x = x[:nb*nf]
	ids := idx[:nb]
	for t, root := range m.roots {
		grp := int(m.group[t])
		if m.walk[t] {
			for r := range ids {
				ids[r] = xgbWalk(nodes, root, x[r*nf:(r+1)*nf])
			}
		} else {
			for r := range ids {
				ids[r] = root
			}
			for d := m.depth[t]; d > 0; d-- {
				xgbStep(nodes, x, nf, ids)
			}
		}
		if g == 1 {
			for r, i := range ids {
				acc[r] += leaf[i]
			}
		} else {
			for r, i := range ids {
				acc[r*g+grp] += leaf[i]
			}
		}
	}
}

// xgbStep moves every row of a block one level down its tree: ids[r] is
// row r's current node. The rows are independent and the step is branch
// free, so the CPU overlaps them.
func xgbStep(nodes []xgbNode, x []float32, nf int, ids []int32) {
	off := 0
	for r, i := range ids {
		nd := nodes[i]
		v := x[off+int(nd.feat)]
		var right int32
		if v >= nd.cond {
			right = 1
		}
		if v != v {
			right = nd.miss
		}
		ids[r] = nd.left + right
		off += nf
	}
}

// xgbWalk returns the leaf row reaches from node i.
func xgbWalk(nodes []xgbNode, i int32, row []float32) int32 {
	for {
		nd := &nodes[i]
		if nd.left == i {
			return i
		}
		v := row[nd.feat]
		next := nd.left
		if !(v < nd.cond) {
			next++ // right: v >= cond, or NaN (fixed below)
		}
		if v != v {
			next = nd.left + nd.miss
		}
		i = next
	}
}

// finish converts nb rows of margins into out, applying the objective
// transform when asked.
func (m *xgbModel) finish(acc []float32, nb int, out []float64, transform bool) {
	if !transform || m.obj == xgbIdentity {
		for i, v := range acc {
			out[i] = float64(v)
		}
		return
	}
	g := m.groups
	switch m.obj {
	case xgbSigmoid:
		for i, v := range acc {
			out[i] = float64(xgbSigmoid32(v))
		}
	case xgbExp:
		for i, v := range acc {
			out[i] = float64(float32(math.Exp(float64(v))))
		}
	case xgbSoftprob:
		for r := 0; r < nb; r++ {
			xgbSoftmax32(acc[r*g:(r+1)*g], out[r*g:(r+1)*g])
		}
	case xgbSoftmax:
		for r := 0; r < nb; r++ {
			row := acc[r*g : (r+1)*g]
			best := 0
			for k, v := range row {
				if v > row[best] {
					best = k
				}
			}
			out[r] = float64(best)
		}
	}
}

// xgbSigmoid32 is XGBoost's common::Sigmoid in float32.
func xgbSigmoid32(x float32) float32 {
	e := min(-x, 88.7)
	denom := float32(math.Exp(float64(e))) + 1
	return 1 / denom
}

// xgbSoftmax32 is XGBoost's common::Softmax: float32 exponentials of the
// max-shifted scores, summed in float64.
func xgbSoftmax32(in []float32, out []float64) {
	wmax := in[0]
	for _, v := range in[1:] {
		if v > wmax {
			wmax = v
		}
	}
	var sum float64
	for k, v := range in {
		e := float32(math.Exp(float64(v - wmax)))
		out[k] = float64(e)
		sum += float64(e)
	}
	s := float32(sum)
	for k := range in {
		out[k] = float64(float32(out[k]) / s)
	}
}

// JSON document shapes. Only the fields scoring needs are decoded.

type xgbDoc struct {
	Learner *xgbLearner `json:"learner"`
	Version []int       `json:"version"`
}

type xgbLearner struct {
	FeatureNames      []string               `json:"feature_names"`
	FeatureTypes      []string               `json:"feature_types"`
	GradientBooster   *xgbBooster            `json:"gradient_booster"`
	LearnerModelParam map[string]xgbParam    `json:"learner_model_param"`
	Objective         *struct{ Name string } `json:"objective"`
}

type xgbBooster struct {
	Name  string        `json:"name"`
	Model *xgbTreeModel `json:"model"`
}

type xgbTreeModel struct {
	Param    map[string]xgbParam `json:"gbtree_model_param"`
	TreeInfo []int64             `json:"tree_info"`
	Trees    []xgbTree           `json:"trees"`
}

type xgbTree struct {
	LeftChildren    []int64             `json:"left_children"`
	RightChildren   []int64             `json:"right_children"`
	SplitIndices    []int64             `json:"split_indices"`
	SplitConditions []float32           `json:"split_conditions"`
	DefaultLeft     xgbBools            `json:"default_left"`
	SplitType       []int64             `json:"split_type"`
	Categories      []int64             `json:"categories"`
	CategoriesNodes []int64             `json:"categories_nodes"`
	Param           map[string]xgbParam `json:"tree_param"`
}

// xgbParam is a parameter value: XGBoost writes them as strings, but a
// number is accepted too.
type xgbParam string

func (p *xgbParam) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = xgbParam(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("parameter %s is neither a string nor a number", b)
	}
	*p = xgbParam(n)
	return nil
}

// xgbBools is default_left: 0/1 integers (2.x+) or booleans.
type xgbBools []bool

func (d *xgbBools) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make([]bool, len(raw))
	for i, r := range raw {
		switch string(r) {
		case "0", "false":
		case "1", "true":
			out[i] = true
		default:
			return fmt.Errorf("default_left[%d] = %s, want 0 or 1", i, r)
		}
	}
	*d = out
	return nil
}

func xgbParamInt(params map[string]xgbParam, key string, def int64) (int64, error) {
	s, ok := params[key]
	if !ok {
		return def, nil
	}
	v, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil || v < 0 || v > math.MaxInt32 {
		return 0, corruptf("%s = %q is not a valid count", key, s)
	}
	return v, nil
}

// xgbBaseScores parses base_score: "5E-1" or a vector "[5E-1]" /
// "[a,b,c]" (XGBoost 3.x).
func xgbBaseScores(s string) ([]float32, error) {
	s = strings.TrimSpace(s)
	parts := []string{s}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		parts = strings.Split(s[1:len(s)-1], ",")
	}
	out := make([]float32, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, corruptf("base_score %q is not a number", s)
		}
		out[i] = float32(v)
	}
	return out, nil
}

func xgbParse(data []byte) (*xgbModel, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, corruptf("empty file")
	}
	if trimmed[0] != '{' {
		return nil, corruptf("not a JSON document (XGBoost models must be saved as .json; this may be a legacy binary or LightGBM text model)")
	}
	if len(trimmed) > 1 && strings.IndexByte("$#UiIlLdDSCHTFZN[{", trimmed[1]) >= 0 {
		return nil, unsupportedf("UBJSON model; save the model with a .json file name")
	}
	var doc xgbDoc
	if err := json.Unmarshal(trimmed, &doc); err != nil {
		return nil, corruptf("invalid JSON: %v", err)
	}
	L := doc.Learner
	if L == nil {
		return nil, corruptf("JSON has no \"learner\" object; not an XGBoost model")
	}
	if L.GradientBooster == nil {
		return nil, corruptf("learner has no gradient_booster")
	}
	switch L.GradientBooster.Name {
	case "gbtree":
	case "gblinear", "dart":
		return nil, unsupportedf("booster %q (only gbtree)", L.GradientBooster.Name)
	default:
		return nil, corruptf("unknown gradient_booster %q", L.GradientBooster.Name)
	}
	tm := L.GradientBooster.Model
	if tm == nil {
		return nil, corruptf("gradient_booster has no model")
	}
	if L.Objective == nil || L.Objective.Name == "" {
		return nil, corruptf("learner has no objective")
	}
	if L.LearnerModelParam == nil {
		return nil, corruptf("learner has no learner_model_param")
	}

	m := &xgbModel{}
	p := L.LearnerModelParam
	numFeature, err := xgbParamInt(p, "num_feature", -1)
	if err != nil {
		return nil, err
	}
	if numFeature < 0 {
		return nil, corruptf("learner_model_param has no num_feature")
	}
	numClass, err := xgbParamInt(p, "num_class", 0)
	if err != nil {
		return nil, err
	}
	numTarget, err := xgbParamInt(p, "num_target", 1)
	if err != nil {
		return nil, err
	}
	if numTarget > 1 {
		return nil, unsupportedf("multi-target model (num_target = %d)", numTarget)
	}
	bs, ok := p["base_score"]
	if !ok {
		return nil, corruptf("learner_model_param has no base_score")
	}
	base, err := xgbBaseScores(string(bs))
	if err != nil {
		return nil, err
	}

	m.groups = 1
	obj := L.Objective.Name
	switch obj {
	case "reg:squarederror", "binary:logitraw":
		m.obj = xgbIdentity
	case "reg:logistic", "binary:logistic":
		m.obj = xgbSigmoid
	case "count:poisson":
		m.obj = xgbExp
	case "multi:softprob":
		m.obj = xgbSoftprob
	case "multi:softmax":
		m.obj = xgbSoftmax
	default:
		return nil, unsupportedf("objective %q", obj)
	}
	if m.obj == xgbSoftprob || m.obj == xgbSoftmax {
		if numClass < 2 {
			return nil, corruptf("objective %s with num_class = %d, want >= 2", obj, numClass)
		}
		if numClass > xgbMaxClasses {
			return nil, unsupportedf("num_class = %d (at most %d)", numClass, xgbMaxClasses)
		}
		m.groups = int(numClass)
	} else if numClass > 1 {
		return nil, corruptf("objective %s with num_class = %d", obj, numClass)
	}

	// base_score is stored in output space; the predictor starts from
	// ObjFunction::ProbToMargin(base_score), computed in float32: logit for
	// the logistic objectives, log for poisson. binary:logitraw stores the
	// margin itself (checked against XGBoost 3.2 fixtures).
	switch {
	case len(base) == 1:
		v := base[0]
		base = make([]float32, m.groups)
		for i := range base {
			base[i] = v
		}
	case len(base) != m.groups:
		return nil, corruptf("base_score has %d values for %d outputs", len(base), m.groups)
	}
	for i, v := range base {
		switch obj {
		case "reg:logistic", "binary:logistic":
			if !(v > 0 && v < 1) {
				return nil, corruptf("base_score %v for %s is not a probability in (0, 1)", v, obj)
			}
			base[i] = -float32(math.Log(float64(1/v - 1)))
		case "count:poisson":
			if !(v > 0) {
				return nil, corruptf("base_score %v for %s is not positive", v, obj)
			}
			base[i] = float32(math.Log(float64(v)))
		}
	}
	m.base = base

	m.nfeat = int(numFeature)
	if len(L.FeatureNames) != 0 && len(L.FeatureNames) != m.nfeat {
		return nil, corruptf("%d feature_names for num_feature = %d", len(L.FeatureNames), m.nfeat)
	}
	if len(L.FeatureNames) > 0 {
		m.features = L.FeatureNames
	} // else nil: Features makes f0, f1, ...
	for i, t := range L.FeatureTypes {
		if t == "c" {
			return nil, unsupportedf("categorical feature %d", i)
		}
	}

	if numTrees, err := xgbParamInt(tm.Param, "num_trees", int64(len(tm.Trees))); err != nil {
		return nil, err
	} else if numTrees != int64(len(tm.Trees)) {
		return nil, corruptf("gbtree_model_param num_trees = %d but %d trees stored", numTrees, len(tm.Trees))
	}
	if len(tm.TreeInfo) != len(tm.Trees) {
		return nil, corruptf("tree_info has %d entries for %d trees", len(tm.TreeInfo), len(tm.Trees))
	}
	total := 0
	for i := range tm.Trees {
		total += len(tm.Trees[i].LeftChildren)
	}
	if total >= math.MaxInt32 {
		return nil, corruptf("%d nodes is too many", total)
	}
	m.nodes = make([]xgbNode, 0, total)
	m.leaf = make([]float32, 0, total)
	m.roots = make([]int32, len(tm.Trees))
	m.group = make([]int32, len(tm.Trees))
	m.depth = make([]int32, len(tm.Trees))
	m.walk = make([]bool, len(tm.Trees))
	for i := range tm.Trees {
		g := tm.TreeInfo[i]
		if g < 0 || g >= int64(m.groups) {
			return nil, corruptf("tree %d: tree_info class %d out of range [0, %d)", i, g, m.groups)
		}
		m.group[i] = int32(g)
		m.roots[i] = int32(len(m.nodes))
		if err := m.addTree(i, &tm.Trees[i]); err != nil {
			return nil, err
		}
	}
	groups := m.groups
	m.scratch.New = func() any {
		return &xgbScratch{acc: make([]float32, xgbBlock*groups)}
	}
	return m, nil
}

// addTree validates tree t and appends its reachable nodes to m.nodes in
// breadth-first order with sibling children adjacent.
func (m *xgbModel) addTree(t int, tr *xgbTree) error {
	n := len(tr.LeftChildren)
	if n == 0 {
		return corruptf("tree %d has no nodes", t)
	}
	if nn, err := xgbParamInt(tr.Param, "num_nodes", int64(n)); err != nil {
		return fmt.Errorf("tree %d: %w", t, err)
	} else if nn != int64(n) {
		return corruptf("tree %d: num_nodes = %d but left_children has %d entries", t, nn, n)
	}
	if slv, err := xgbParamInt(tr.Param, "size_leaf_vector", 1); err != nil {
		return fmt.Errorf("tree %d: %w", t, err)
	} else if slv > 1 {
		return unsupportedf("tree %d: vector leaves (size_leaf_vector = %d)", t, slv)
	}
	for name, l := range map[string]int{
		"right_children":   len(tr.RightChildren),
		"split_indices":    len(tr.SplitIndices),
		"split_conditions": len(tr.SplitConditions),
		"default_left":     len(tr.DefaultLeft),
	} {
		if l != n {
			return corruptf("tree %d: %s has %d entries, left_children %d", t, name, l, n)
		}
	}
	if len(tr.SplitType) != 0 && len(tr.SplitType) != n {
		return corruptf("tree %d: split_type has %d entries, left_children %d", t, len(tr.SplitType), n)
	}
	for i, st := range tr.SplitType {
		if st != 0 && tr.LeftChildren[i] != -1 {
			return unsupportedf("tree %d node %d: categorical split", t, i)
		}
	}
	if len(tr.Categories) != 0 || len(tr.CategoriesNodes) != 0 {
		return unsupportedf("tree %d: categorical splits", t)
	}
	parent := make([]int32, n)
	for i := range parent {
		parent[i] = -1
	}
	for i := 0; i < n; i++ {
		l, r := tr.LeftChildren[i], tr.RightChildren[i]
		if l == -1 && r == -1 {
			if f := tr.SplitConditions[i]; math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				return corruptf("tree %d node %d: leaf value %v", t, i, f)
			}
			continue
		}
		if l == -1 || r == -1 {
			return corruptf("tree %d node %d: one child missing (left %d, right %d)", t, i, l, r)
		}
		for _, c := range [2]int64{l, r} {
			if c <= int64(i) || c >= int64(n) {
				return corruptf("tree %d node %d: child %d out of range (%d, %d)", t, i, c, i, n)
			}
			if parent[c] != -1 {
				return corruptf("tree %d node %d: child %d already has parent %d", t, i, c, parent[c])
			}
			parent[c] = int32(i)
		}
		if l == r {
			return corruptf("tree %d node %d: both children are node %d", t, i, l)
		}
		if f := tr.SplitIndices[i]; f < 0 || f >= int64(m.nfeat) {
			return corruptf("tree %d node %d: split feature %d out of range [0, %d)", t, i, f, m.nfeat)
		}
		if math.IsNaN(float64(tr.SplitConditions[i])) {
			return corruptf("tree %d node %d: split condition is NaN", t, i)
		}
	}
	// Breadth-first relayout: queue holds original node ids; the node at
	// queue position k is written to m.nodes[base+k].
	base := int32(len(m.nodes))
	queue := []int64{0}
	depth := []int32{0}
	var maxDepth, leaves, depthSum int64
	for k := 0; k < len(queue); k++ {
		i := queue[k]
		self := base + int32(k)
		if tr.LeftChildren[i] == -1 {
			m.nodes = append(m.nodes, xgbNode{cond: float32(math.NaN()), left: self})
			m.leaf = append(m.leaf, tr.SplitConditions[i])
			maxDepth = max(maxDepth, int64(depth[k]))
			depthSum += int64(depth[k])
			leaves++
			continue
		}
		nd := xgbNode{
			cond: tr.SplitConditions[i],
			feat: int32(tr.SplitIndices[i]),
			left: base + int32(len(queue)),
			miss: 1,
		}
		if tr.DefaultLeft[i] {
			nd.miss = 0
		}
		m.nodes = append(m.nodes, nd)
		m.leaf = append(m.leaf, 0)
		queue = append(queue, tr.LeftChildren[i], tr.RightChildren[i])
		depth = append(depth, depth[k]+1, depth[k]+1)
	}
	m.depth[t] = int32(maxDepth)
	// Level-by-level evaluation takes maxDepth steps for every row; a tree
	// much deeper than its mean leaf depth (lossguide growth) is walked row
	// by row instead. The factor is a guess, not tuned.
	m.walk[t] = maxDepth*leaves > 2*depthSum+2*leaves
	return nil
}
