package infer

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Standard output column names of models that predict a value per row (or
// a class index) and, for multi-class models, one probability per class.
const (
	PredictionColumn  = "prediction"
	ProbabilityPrefix = "probability_"
)

// predictBlock is how many rows are transposed into the feature matrix at a
// time: small enough to stay in cache, large enough to amortize the calls.
const predictBlock = 4096

// treeModel is a Model over a tree ensemble (XGBoost or LightGBM).
type treeModel struct {
	t       Trees
	in, out *arrow.Schema
	nf, no  int
	probs   bool // multi-output: prediction = argmax, plus probability columns
	scratch sync.Pool
	mem     memory.Allocator // the output batches'
}

type treeScratch struct {
	x   []float32
	out []float64
}

// NewTreeModel wraps a tree ensemble as a Model. features, when non-empty,
// renames the model's inputs (it must have one name per model feature).
// A single-output model returns one float64 "prediction" column; a
// multi-class model returns "prediction" (the most probable class, int64)
// and "probability_<k>" (float64) per class.
func NewTreeModel(t Trees, features []string) (Model, error) {
	names := t.Features()
	if len(features) > 0 {
		if len(features) != len(names) {
			return nil, fmt.Errorf("%w: model has %d features, the spec names %d", ErrBinding, len(names), len(features))
		}
		names = features
	}
	seen := map[string]bool{}
	in := make([]arrow.Field, len(names))
	for i, n := range names {
		if seen[n] {
			return nil, fmt.Errorf("%w: feature %q appears twice", ErrBinding, n)
		}
		seen[n] = true
		in[i] = arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float32, Nullable: true}
	}
	m := &treeModel{t: t, in: arrow.NewSchema(in, nil), nf: len(names), no: t.Outputs(), mem: memory.DefaultAllocator}
	out := []arrow.Field{{Name: PredictionColumn, Type: arrow.PrimitiveTypes.Float64}}
	if m.no > 1 {
		m.probs = true
		out[0].Type = arrow.PrimitiveTypes.Int64
		for k := 0; k < m.no; k++ {
			out = append(out, arrow.Field{Name: ProbabilityPrefix + strconv.Itoa(k), Type: arrow.PrimitiveTypes.Float64})
		}
	}
	m.out = arrow.NewSchema(out, nil)
	m.scratch.New = func() any {
		return &treeScratch{x: make([]float32, predictBlock*m.nf), out: make([]float64, predictBlock*m.no)}
	}
	return m, nil
}

func (m *treeModel) InputSchema() *arrow.Schema  { return m.in }
func (m *treeModel) OutputSchema() *arrow.Schema { return m.out }
func (m *treeModel) Close() error                { return nil }

// Predict transposes blocks of rows into a float32 matrix and scores them;
// the output arrays are built on Go slices without a copy per row.
func (m *treeModel) Predict(ctx context.Context, in arrow.RecordBatch) (arrow.RecordBatch, error) {
	if int(in.NumCols()) != m.nf {
		return nil, fmt.Errorf("%w: model has %d features, batch has %d columns", ErrBinding, m.nf, in.NumCols())
	}
	n := int(in.NumRows())
	bufs := make([]*memory.Buffer, m.no)
	cols := make([][]float64, m.no)
	for k := range cols {
		bufs[k], cols[k] = float64Buffer(m.mem, n)
	}
	ok := false
	defer func() {
		if !ok {
			for _, b := range bufs {
				b.Release()
			}
		}
	}()
	sc := m.scratch.Get().(*treeScratch)
	defer m.scratch.Put(sc)
	for start := 0; start < n; start += predictBlock {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		nb := min(predictBlock, n-start)
		x := sc.x[:nb*m.nf]
		if err := Float32Rows(in, start, nb, x); err != nil {
			return nil, err
		}
		out := sc.out[:nb*m.no]
		if err := m.t.Predict(x, nb, out); err != nil {
			return nil, err
		}
		if m.no == 1 {
			copy(cols[0][start:], out)
			continue
		}
		for r := 0; r < nb; r++ {
			for k := 0; k < m.no; k++ {
				cols[k][start+r] = out[r*m.no+k]
			}
		}
	}
	arrs := make([]arrow.Array, 0, m.out.NumFields())
	if m.probs {
		arrs = append(arrs, argmaxArray(m.mem, cols))
	}
	for k := range cols {
		arrs = append(arrs, float64Array(bufs[k], n))
	}
	ok = true
	rec := array.NewRecordBatch(m.out, arrs, int64(n))
	for _, a := range arrs {
		a.Release()
	}
	return rec, nil
}

// withAllocator sets the allocator of a model of ours built by a
// constructor that returns (Model, error).
func withAllocator(m Model, err error) func(memory.Allocator) (Model, error) {
	return func(mem memory.Allocator) (Model, error) {
		if err != nil {
			return nil, err
		}
		if mem != nil {
			switch x := m.(type) {
			case *treeModel:
				x.mem = mem
			case *linearModel:
				x.mem = mem
			}
		}
		return m, nil
	}
}

// float64Buffer allocates n float64 values from mem; the caller owns the
// buffer (one reference).
func float64Buffer(mem memory.Allocator, n int) (*memory.Buffer, []float64) {
	b := memory.NewResizableBuffer(mem)
	b.Resize(n * arrow.Float64SizeBytes)
	return b, arrow.Float64Traits.CastFromBytes(b.Bytes())
}

// float64Array makes an array of the n values in b, taking over the
// caller's reference to b.
func float64Array(b *memory.Buffer, n int) arrow.Array {
	data := array.NewData(arrow.PrimitiveTypes.Float64, n, []*memory.Buffer{nil, b}, nil, 0, 0)
	b.Release()
	defer data.Release()
	return array.NewFloat64Data(data)
}

// Float64Array wraps vals as an Arrow array without copying; vals must not
// be modified afterwards.
func Float64Array(vals []float64) arrow.Array {
	buf := memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(vals))
	data := array.NewData(arrow.PrimitiveTypes.Float64, len(vals), []*memory.Buffer{nil, buf}, nil, 0, 0)
	defer data.Release()
	return array.NewFloat64Data(data)
}

// Int64Array wraps vals as an Arrow array without copying.
func Int64Array(vals []int64) arrow.Array {
	buf := memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(vals))
	data := array.NewData(arrow.PrimitiveTypes.Int64, len(vals), []*memory.Buffer{nil, buf}, nil, 0, 0)
	defer data.Release()
	return array.NewInt64Data(data)
}

// argmaxArray is the index of the largest value per row (first on ties),
// allocated from mem.
func argmaxArray(mem memory.Allocator, cols [][]float64) arrow.Array {
	n := len(cols[0])
	b := memory.NewResizableBuffer(mem)
	b.Resize(n * arrow.Int64SizeBytes)
	idx := arrow.Int64Traits.CastFromBytes(b.Bytes())
	clear(idx)
	best := append([]float64(nil), cols[0]...)
	for k := 1; k < len(cols); k++ {
		for r, v := range cols[k] {
			if v > best[r] {
				best[r] = v
				idx[r] = int64(k)
			}
		}
	}
	data := array.NewData(arrow.PrimitiveTypes.Int64, n, []*memory.Buffer{nil, b}, nil, 0, 0)
	b.Release()
	defer data.Release()
	return array.NewInt64Data(data)
}

func init() {
	Register("xgboost", func(cfg Config) (Model, error) {
		t, err := LoadXGBoost(cfg.Resolve(cfg.Path))
		if err != nil {
			return nil, err
		}
		return withAllocator(NewTreeModel(t, cfg.Features))(cfg.Mem)
	})
	Register("lightgbm", func(cfg Config) (Model, error) {
		t, err := LoadLightGBM(cfg.Resolve(cfg.Path))
		if err != nil {
			return nil, err
		}
		return withAllocator(NewTreeModel(t, cfg.Features))(cfg.Mem)
	})
}
