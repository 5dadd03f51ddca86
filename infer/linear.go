package infer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// LinearDoc is the JSON file of a linear or logistic model:
//
//	{
//	  "features":     ["age", "income"],          // input columns, in order
//	  "coefficients": [0.5, -1.25],               // or one row per class
//	  "intercept":    0.1,                        // or one per class
//	  "link":         "identity",                 // identity | logistic | softmax
//	  "missing":      "null"                      // null | zero | error
//	}
//
// identity is linear regression; logistic is binary logistic regression
// (the prediction is the probability of the positive class); softmax is
// multinomial logistic regression with one coefficient row per class (the
// prediction is the most probable class, plus one probability per class).
// A missing feature value makes the row's prediction null ("null"), counts
// as 0 ("zero"), or fails the batch ("error").
type LinearDoc struct {
	Features     []string        `json:"features"`
	Coefficients json.RawMessage `json:"coefficients"`
	Intercept    json.RawMessage `json:"intercept"`
	Link         string          `json:"link"`
	Missing      string          `json:"missing,omitempty"`
}

type linearModel struct {
	in, out *arrow.Schema
	coef    [][]float64 // per output: one weight per feature
	icept   []float64
	link    string
	missing string
	nf      int
	scratch sync.Pool
	mem     memory.Allocator // the output batches'
}

// LoadLinear reads a linear model JSON file (LinearDoc).
func LoadLinear(path string, features []string) (Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("linear model: %w", err)
	}
	m, err := ParseLinear(data, features)
	if err != nil {
		return nil, fmt.Errorf("linear model %s: %w", path, err)
	}
	return m, nil
}

// ParseLinear decodes a linear model (LinearDoc); features, when set,
// renames its inputs.
func ParseLinear(data []byte, features []string) (Model, error) {
	var doc LinearDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, corruptf("%v", err)
	}
	nf := len(doc.Features)
	if nf == 0 {
		return nil, corruptf("no features")
	}
	m := &linearModel{link: doc.Link, missing: doc.Missing, nf: nf, mem: memory.DefaultAllocator}
	if m.missing == "" {
		m.missing = "null"
	}
	switch m.missing {
	case "null", "zero", "error":
	default:
		return nil, corruptf("missing %q: want null, zero or error", doc.Missing)
	}
	var flat []float64
	if err := json.Unmarshal(doc.Coefficients, &flat); err == nil {
		m.coef = [][]float64{flat}
	} else if err := json.Unmarshal(doc.Coefficients, &m.coef); err != nil {
		return nil, corruptf("coefficients: want a list of numbers or a list of lists: %v", err)
	}
	for k, row := range m.coef {
		if len(row) != nf {
			return nil, corruptf("coefficients row %d has %d values for %d features", k, len(row), nf)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, corruptf("coefficient [%d][%d] is not finite", k, j)
			}
		}
	}
	var one float64
	switch {
	case len(doc.Intercept) == 0:
		m.icept = make([]float64, len(m.coef))
	case json.Unmarshal(doc.Intercept, &one) == nil:
		m.icept = []float64{one}
	default:
		if err := json.Unmarshal(doc.Intercept, &m.icept); err != nil {
			return nil, corruptf("intercept: want a number or a list: %v", err)
		}
	}
	if len(m.icept) != len(m.coef) {
		return nil, corruptf("%d intercepts for %d coefficient rows", len(m.icept), len(m.coef))
	}
	switch m.link {
	case "", "identity":
		m.link = "identity"
		if len(m.coef) != 1 {
			return nil, unsupportedf("link identity with %d outputs (one coefficient row expected)", len(m.coef))
		}
	case "logistic":
		if len(m.coef) != 1 {
			return nil, corruptf("link logistic needs one coefficient row, got %d (use softmax for several classes)", len(m.coef))
		}
	case "softmax":
		if len(m.coef) < 2 {
			return nil, corruptf("link softmax needs a coefficient row per class (at least 2)")
		}
	default:
		return nil, unsupportedf("link %q (want identity, logistic or softmax)", m.link)
	}
	names := doc.Features
	if len(features) > 0 {
		if len(features) != nf {
			return nil, fmt.Errorf("%w: model has %d features, the spec names %d", ErrBinding, nf, len(features))
		}
		names = features
	}
	in := make([]arrow.Field, nf)
	for i, n := range names {
		in[i] = arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
	}
	m.in = arrow.NewSchema(in, nil)
	out := []arrow.Field{{Name: PredictionColumn, Type: arrow.PrimitiveTypes.Float64, Nullable: true}}
	if m.link == "softmax" {
		out[0].Type = arrow.PrimitiveTypes.Int64
		for k := range m.coef {
			out = append(out, arrow.Field{Name: ProbabilityPrefix + strconv.Itoa(k), Type: arrow.PrimitiveTypes.Float64, Nullable: true})
		}
	}
	m.out = arrow.NewSchema(out, nil)
	m.scratch.New = func() any { s := make([]float64, predictBlock*nf); return &s }
	return m, nil
}

func (m *linearModel) InputSchema() *arrow.Schema  { return m.in }
func (m *linearModel) OutputSchema() *arrow.Schema { return m.out }
func (m *linearModel) Close() error                { return nil }

func (m *linearModel) Predict(ctx context.Context, in arrow.RecordBatch) (arrow.RecordBatch, error) {
	if int(in.NumCols()) != m.nf {
		return nil, fmt.Errorf("%w: model has %d features, batch has %d columns", ErrBinding, m.nf, in.NumCols())
	}
	n := int(in.NumRows())
	k := len(m.coef)
	bufs := make([]*memory.Buffer, k)
	cols := make([][]float64, k)
	for i := range cols {
		bufs[i], cols[i] = float64Buffer(m.mem, n)
	}
	ok := false
	defer func() {
		if !ok {
			for _, b := range bufs {
				b.Release()
			}
		}
	}()
	valid := make([]byte, bitutil.BytesForBits(int64(n)))
	bitutil.SetBitsTo(valid, 0, int64(n), true)
	nulls := 0
	sp := m.scratch.Get().(*[]float64)
	defer m.scratch.Put(sp)
	z := make([]float64, k)
	for start := 0; start < n; start += predictBlock {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		nb := min(predictBlock, n-start)
		x := (*sp)[:nb*m.nf]
		if err := Float64Rows(in, start, nb, x); err != nil {
			return nil, err
		}
		for r := 0; r < nb; r++ {
			row := x[r*m.nf : (r+1)*m.nf]
			missing := false
			for j, v := range row {
				if math.IsNaN(v) {
					switch m.missing {
					case "zero":
						row[j] = 0
					case "error":
						return nil, fmt.Errorf("feature %q is missing (null or NaN) at row %d; set missing: zero or null in the model file to accept it", m.in.Field(j).Name, start+r)
					default:
						missing = true
					}
				}
			}
			if missing {
				bitutil.ClearBit(valid, start+r)
				nulls++
				continue
			}
			for c, w := range m.coef {
				s := m.icept[c]
				for j, v := range row {
					s += w[j] * v
				}
				z[c] = s
			}
			switch m.link {
			case "identity":
				cols[0][start+r] = z[0]
			case "logistic":
				cols[0][start+r] = 1 / (1 + math.Exp(-z[0]))
			case "softmax":
				softmax64(z)
				for c := range z {
					cols[c][start+r] = z[c]
				}
			}
		}
	}
	var bitmap *memory.Buffer
	if nulls > 0 {
		bitmap = memory.NewBufferBytes(valid)
	}
	arrs := make([]arrow.Array, 0, m.out.NumFields())
	if m.link == "softmax" {
		arrs = append(arrs, withNulls(argmaxArray(m.mem, cols), bitmap, nulls))
	}
	for i := range cols {
		arrs = append(arrs, withNulls(float64Array(bufs[i], n), bitmap, nulls))
	}
	ok = true
	rec := array.NewRecordBatch(m.out, arrs, int64(n))
	for _, a := range arrs {
		a.Release()
	}
	return rec, nil
}

// withNulls returns a (released) with the validity bitmap attached.
func withNulls(a arrow.Array, bitmap *memory.Buffer, nulls int) arrow.Array {
	if nulls == 0 {
		return a
	}
	defer a.Release()
	bufs := a.Data().Buffers()
	data := array.NewData(a.DataType(), a.Len(), []*memory.Buffer{bitmap, bufs[1]}, nil, nulls, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

func softmax64(z []float64) {
	mx := z[0]
	for _, v := range z[1:] {
		mx = max(mx, v)
	}
	var s float64
	for i, v := range z {
		z[i] = math.Exp(v - mx)
		s += z[i]
	}
	for i := range z {
		z[i] /= s
	}
}

func init() {
	Register("linear", func(cfg Config) (Model, error) {
		return withAllocator(LoadLinear(cfg.Resolve(cfg.Path), cfg.Features))(cfg.Mem)
	})
}
