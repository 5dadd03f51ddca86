package onnx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/liminal-data/liminal/infer"
)

func init() { infer.Register("onnx", Open) }

// maxChunk bounds the rows of one Run for models with a dynamic batch
// dimension: a partition's batch (64Ki rows) runs at once, larger inputs
// are split so the float32 matrix stays bounded.
const maxChunk = 1 << 16

// model is an ONNX model behind one onnxruntime session. Run is
// thread-safe in onnxruntime, so concurrent Predict calls share the
// session; the RWMutex only keeps Close from destroying it under a Run.
type model struct {
	*layout
	path    string
	mu      sync.RWMutex
	sess    *ort.DynamicAdvancedSession
	scratch sync.Pool // *[]float32 / *[]float64 matrices
}

// Open loads an ONNX model file (cfg.Path, relative to cfg.Dir) into an
// onnxruntime session with cfg.Threads intra-op threads (default 1) and one
// inter-op thread, after loading the runtime (LoadRuntime(cfg.Runtime)).
func Open(cfg infer.Config) (infer.Model, error) {
	path := cfg.Resolve(cfg.Path)
	if path == "" {
		return nil, errors.New("onnx model: no path")
	}
	head, err := readHead(path)
	if err != nil {
		return nil, fmt.Errorf("onnx model: %w", err)
	}
	if err := sniff(head); err != nil {
		return nil, fmt.Errorf("onnx model %s: %w", path, err)
	}
	if _, _, err := LoadRuntime(cfg.Resolve(cfg.Runtime)); err != nil {
		return nil, err
	}
	threads := cfg.Threads
	if threads <= 0 {
		threads = 1
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnx model %s: session options: %w", path, err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return nil, fmt.Errorf("onnx model %s: %w", path, err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("onnx model %s: %w", path, err)
	}
	ins, outs, err := ort.GetInputOutputInfoWithOptions(path, opts)
	if err != nil {
		return nil, fmt.Errorf("onnx model %s: %w", path, loadError(err))
	}
	inInfo, outInfo := convertInfo(ins), convertInfo(outs)
	names := func(vs []valueInfo) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = v.Name
		}
		return out
	}
	sess, err := ort.NewDynamicAdvancedSession(path, names(inInfo), names(outInfo), opts)
	if err != nil {
		return nil, fmt.Errorf("onnx model %s: %w", path, loadError(err))
	}
	meta, err := featureNamesMeta(sess)
	if err != nil {
		sess.Destroy()
		return nil, fmt.Errorf("onnx model %s: metadata: %w", path, err)
	}
	l, err := planLayout(inInfo, outInfo, cfg.Features, meta)
	if err != nil {
		sess.Destroy()
		return nil, fmt.Errorf("onnx model %s: %w", path, err)
	}
	return &model{layout: l, path: path, sess: sess}, nil
}

func readHead(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not an .onnx file", path)
	}
	head := make([]byte, 512)
	n, _ := f.Read(head)
	return head[:n], nil
}

// sniff rejects files that are clearly not ONNX protobufs with a message
// naming what they look like (protobuf itself has no magic number).
func sniff(head []byte) error {
	s := bytes.TrimSpace(head)
	switch {
	case len(s) == 0:
		return fmt.Errorf("%w: the file is empty", infer.ErrCorrupt)
	case s[0] == '{' || s[0] == '[':
		what := "JSON"
		switch {
		case bytes.Contains(s, []byte(`"learner"`)):
			what = "an XGBoost JSON model (format: xgboost)"
		case bytes.Contains(s, []byte(`"coefficients"`)):
			what = "a linear model JSON file (format: linear)"
		}
		return fmt.Errorf("%w: the file is %s, not an ONNX protobuf", infer.ErrCorrupt, what)
	case bytes.HasPrefix(s, []byte("tree\n")) || bytes.HasPrefix(s, []byte("tree\r\n")):
		return fmt.Errorf("%w: the file is a LightGBM text model (format: lightgbm), not an ONNX protobuf", infer.ErrCorrupt)
	case bytes.HasPrefix(s, []byte("PK\x03\x04")):
		return fmt.Errorf("%w: the file is a zip archive (a PyTorch checkpoint or Keras file?), not an ONNX protobuf; export the model to ONNX first", infer.ErrCorrupt)
	}
	return nil
}

// loadError classifies onnxruntime's load failures: files it cannot parse
// are corrupt, operators it lacks are unsupported.
func loadError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "NOT_IMPLEMENTED"), strings.Contains(msg, "Could not find an implementation"),
		strings.Contains(msg, "Unsupported model IR version"), strings.Contains(msg, "is not a registered function/op"):
		return fmt.Errorf("%w: onnxruntime cannot run it: %s", infer.ErrUnsupported, msg)
	}
	return fmt.Errorf("%w: onnxruntime cannot load it (a truncated file, or not an ONNX model?): %s", infer.ErrCorrupt, msg)
}

func featureNamesMeta(sess *ort.DynamicAdvancedSession) (string, error) {
	md, err := sess.GetModelMetadata()
	if err != nil {
		return "", err
	}
	defer md.Destroy()
	v, ok, err := md.LookupCustomMetadataMap("feature_names")
	if err != nil || !ok {
		return "", err
	}
	return v, nil
}

func convertInfo(infos []ort.InputOutputInfo) []valueInfo {
	out := make([]valueInfo, len(infos))
	for i, in := range infos {
		v := valueInfo{Name: in.Name, Dims: append([]int64(nil), in.Dimensions...)}
		switch in.OrtValueType {
		case ort.ONNXTypeTensor:
			v.Kind = kindTensor
		case ort.ONNXTypeSequence:
			v.Kind = kindSequence
		case ort.ONNXTypeMap:
			v.Kind = kindMap
		default:
			v.Kind = kindOther
		}
		v.ElemName = in.DataType.String()
		switch in.DataType {
		case ort.TensorElementDataTypeFloat:
			v.Elem = elemFloat
		case ort.TensorElementDataTypeDouble:
			v.Elem = elemDouble
		case ort.TensorElementDataTypeInt32:
			v.Elem = elemInt32
		case ort.TensorElementDataTypeInt64:
			v.Elem = elemInt64
		case ort.TensorElementDataTypeString:
			v.Elem = elemString
		case ort.TensorElementDataTypeBool:
			v.Elem = elemBool
		}
		for j, d := range v.Dims {
			if d < 0 {
				v.Dims[j] = -1
			}
		}
		out[i] = v
	}
	return out
}

func (m *model) InputSchema() *arrow.Schema  { return m.in }
func (m *model) OutputSchema() *arrow.Schema { return m.out }

// Close destroys the session; it is idempotent and waits for running
// Predict calls.
func (m *model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		return nil
	}
	err := m.sess.Destroy()
	m.sess = nil
	return err
}

// result holds the output columns of one Predict call.
type result struct {
	f64  [][]float64 // per output column (nil when not float64)
	i64  [][]int64
	str  [][]string
	bits [][]bool
}

func (m *model) newResult(n int) *result {
	nc := m.out.NumFields()
	r := &result{f64: make([][]float64, nc), i64: make([][]int64, nc), str: make([][]string, nc), bits: make([][]bool, nc)}
	for i, f := range m.out.Fields() {
		switch f.Type.ID() {
		case arrow.FLOAT64:
			r.f64[i] = make([]float64, n)
		case arrow.INT64:
			r.i64[i] = make([]int64, n)
		case arrow.STRING:
			r.str[i] = make([]string, n)
		case arrow.BOOL:
			r.bits[i] = make([]bool, n)
		}
	}
	return r
}

// Predict feeds the batch in chunks (the model's fixed batch size, or up
// to maxChunk rows) and gathers the outputs into Arrow columns.
func (m *model) Predict(ctx context.Context, in arrow.RecordBatch) (arrow.RecordBatch, error) {
	if int(in.NumCols()) != m.in.NumFields() {
		return nil, fmt.Errorf("%w: onnx model %s has %d inputs, batch has %d columns", infer.ErrBinding, m.path, m.in.NumFields(), in.NumCols())
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.sess == nil {
		return nil, fmt.Errorf("onnx model %s: Predict after Close", m.path)
	}
	n := int(in.NumRows())
	res := m.newResult(n)
	chunk := maxChunk
	if m.batch > 0 {
		chunk = int(m.batch)
	}
	for start := 0; start < n; start += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		nb := min(chunk, n-start)
		if err := m.run(in, start, nb, res); err != nil {
			return nil, fmt.Errorf("onnx model %s: %w", m.path, err)
		}
	}
	return m.build(res, n), nil
}

// run scores rows [start, start+nb) into res.
func (m *model) run(in arrow.RecordBatch, start, nb int, res *result) error {
	rows := nb
	if m.batch > 0 {
		rows = int(m.batch) // pad the last chunk; extra rows are dropped
	}
	inputs := make([]ort.Value, len(m.inputs))
	outputs := make([]ort.Value, len(m.outputs))
	defer func() {
		for _, v := range inputs {
			if v != nil {
				v.Destroy()
			}
		}
		for _, v := range outputs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	if m.matrix {
		v, release, err := m.matrixTensor(in, start, nb, rows)
		if err != nil {
			return err
		}
		defer release()
		inputs[0] = v
	} else {
		for i, info := range m.inputs {
			shape := ort.NewShape(int64(rows))
			if len(info.Dims) == 2 {
				shape = ort.NewShape(int64(rows), 1)
			}
			v, err := columnTensor(in.Column(i), info.Elem, start, nb, rows, shape)
			if err != nil {
				return fmt.Errorf("input %q (column %q): %w", info.Name, m.in.Field(i).Name, err)
			}
			inputs[i] = v
		}
	}
	if err := m.sess.Run(inputs, outputs); err != nil {
		return err
	}
	for i := range m.outputs {
		if err := m.gather(&m.outputs[i], outputs[i], start, nb, rows, res); err != nil {
			return err
		}
	}
	return nil
}

// matrixTensor builds the [rows,F] input from all columns of in; release
// returns its buffer to the pool after the Run.
func (m *model) matrixTensor(in arrow.RecordBatch, start, nb, rows int) (ort.Value, func(), error) {
	size := rows * m.nf
	shape := ort.NewShape(int64(rows), int64(m.nf))
	if m.inputs[0].Elem == elemDouble {
		buf := m.getF64(size)
		x := (*buf)[:size]
		if err := fillBlocked(in, start, nb, m.nf, x, infer.Float64Rows); err != nil {
			m.scratch.Put(buf)
			return nil, nil, err
		}
		clear(x[nb*m.nf:])
		t, err := ort.NewTensor(shape, x)
		if err != nil {
			m.scratch.Put(buf)
			return nil, nil, err
		}
		return t, func() { m.scratch.Put(buf) }, nil
	}
	buf := m.getF32(size)
	x := (*buf)[:size]
	if err := fillBlocked(in, start, nb, m.nf, x, infer.Float32Rows); err != nil {
		m.scratch.Put(buf)
		return nil, nil, err
	}
	clear(x[nb*m.nf:])
	t, err := ort.NewTensor(shape, x)
	if err != nil {
		m.scratch.Put(buf)
		return nil, nil, err
	}
	return t, func() { m.scratch.Put(buf) }, nil
}

// fillBlocked transposes rows [start, start+nb) of in into the row-major
// matrix x a block of rows at a time: the block being written (~32 KiB)
// stays in cache while every column is copied into it, which a single
// column-by-column pass over 64Ki rows would not.
func fillBlocked[F float32 | float64](in arrow.RecordBatch, start, nb, nf int, x []F, fill func(arrow.RecordBatch, int, int, []F) error) error {
	block := max(16, 8192/max(nf, 1))
	for b := 0; b < nb; b += block {
		bn := min(block, nb-b)
		if err := fill(in, start+b, bn, x[b*nf:(b+bn)*nf]); err != nil {
			return err
		}
	}
	return nil
}

func (m *model) getF32(size int) *[]float32 {
	if p, ok := m.scratch.Get().(*[]float32); ok && cap(*p) >= size {
		return p
	}
	s := make([]float32, size)
	return &s
}

func (m *model) getF64(size int) *[]float64 {
	if p, ok := m.scratch.Get().(*[]float64); ok && cap(*p) >= size {
		return p
	}
	s := make([]float64, size)
	return &s
}

// columnTensor builds one per-column input of rows values (nb from col,
// the rest padding).
func columnTensor(col arrow.Array, e elem, start, nb, rows int, shape ort.Shape) (ort.Value, error) {
	one := oneColumn(col)
	defer one.Release()
	switch e {
	case elemFloat:
		x := make([]float32, rows)
		if err := infer.Float32Rows(one, start, nb, x); err != nil {
			return nil, err
		}
		return ort.NewTensor(shape, x)
	case elemDouble:
		x := make([]float64, rows)
		if err := infer.Float64Rows(one, start, nb, x); err != nil {
			return nil, err
		}
		return ort.NewTensor(shape, x)
	case elemInt64:
		x := make([]int64, rows)
		if err := fillInt64(col, start, nb, x); err != nil {
			return nil, err
		}
		return ort.NewTensor(shape, x)
	case elemString:
		x := make([]string, rows)
		switch a := col.(type) {
		case *array.String:
			for i := 0; i < nb; i++ {
				if a.IsValid(start + i) {
					x[i] = a.Value(start + i)
				}
			}
		case *array.LargeString:
			for i := 0; i < nb; i++ {
				if a.IsValid(start + i) {
					x[i] = a.Value(start + i)
				}
			}
		default:
			return nil, fmt.Errorf("%w: a string input cannot take %s", infer.ErrBinding, col.DataType())
		}
		t, err := ort.NewStringTensor(shape)
		if err != nil {
			return nil, err
		}
		if err := t.SetContents(x); err != nil {
			t.Destroy()
			return nil, err
		}
		return t, nil
	}
	return nil, fmt.Errorf("%w: input type %s", infer.ErrUnsupported, e)
}

func oneColumn(col arrow.Array) arrow.RecordBatch {
	s := arrow.NewSchema([]arrow.Field{{Name: "x", Type: col.DataType(), Nullable: true}}, nil)
	return array.NewRecordBatch(s, []arrow.Array{col}, int64(col.Len()))
}

// fillInt64 converts nb values of an integer, boolean or integral float
// column; nulls cannot be represented and fail.
func fillInt64(col arrow.Array, start, nb int, dst []int64) error {
	for i := 0; i < nb; i++ {
		if col.IsNull(start + i) {
			return fmt.Errorf("null at row %d: an int64 input cannot be missing", start+i)
		}
	}
	switch a := col.(type) {
	case *array.Int64:
		copy(dst, a.Int64Values()[start:start+nb])
	case *array.Int32:
		for i, v := range a.Int32Values()[start : start+nb] {
			dst[i] = int64(v)
		}
	case *array.Int16:
		for i, v := range a.Int16Values()[start : start+nb] {
			dst[i] = int64(v)
		}
	case *array.Int8:
		for i, v := range a.Int8Values()[start : start+nb] {
			dst[i] = int64(v)
		}
	case *array.Uint32:
		for i, v := range a.Uint32Values()[start : start+nb] {
			dst[i] = int64(v)
		}
	case *array.Uint16:
		for i, v := range a.Uint16Values()[start : start+nb] {
			dst[i] = int64(v)
		}
	case *array.Uint8:
		for i, v := range a.Uint8Values()[start : start+nb] {
			dst[i] = int64(v)
		}
	case *array.Uint64:
		for i, v := range a.Uint64Values()[start : start+nb] {
			if v > math.MaxInt64 {
				return fmt.Errorf("value %d at row %d does not fit int64", v, start+i)
			}
			dst[i] = int64(v)
		}
	case *array.Boolean:
		for i := 0; i < nb; i++ {
			if a.Value(start + i) {
				dst[i] = 1
			} else {
				dst[i] = 0
			}
		}
	default:
		f := make([]float64, nb)
		one := oneColumn(col)
		defer one.Release()
		if err := infer.Float64Rows(one, start, nb, f); err != nil {
			return err
		}
		for i, v := range f {
			if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
				return fmt.Errorf("value %v at row %d is not an integer", v, start+i)
			}
			dst[i] = int64(v)
		}
	}
	return nil
}

// gather copies the first nb rows of one output into res from row start.
func (m *model) gather(p *outputPlan, v ort.Value, start, nb, rows int, res *result) error {
	if v == nil {
		return fmt.Errorf("output %q: no value", p.Name)
	}
	shape := v.GetShape()
	if len(shape) == 0 || shape[0] != int64(rows) || shape.FlattenedSize() != int64(rows*p.width) {
		return fmt.Errorf("output %q: shape %v for %d rows, the model declares %s", p.Name, shape, rows, p.shape())
	}
	w := p.width
	switch t := v.(type) {
	case *ort.Tensor[float32]:
		putFloats(p, t.GetData()[:nb*w], start, res)
	case *ort.Tensor[float64]:
		putFloats(p, t.GetData()[:nb*w], start, res)
	case *ort.Tensor[int64]:
		putInts(p, t.GetData()[:nb*w], start, res)
	case *ort.Tensor[int32]:
		putInts(p, t.GetData()[:nb*w], start, res)
	case *ort.Tensor[bool]:
		d := t.GetData()
		for k := 0; k < w; k++ {
			col := res.bits[p.col+k]
			for r := 0; r < nb; r++ {
				col[start+r] = d[r*w+k]
			}
		}
	case *ort.StringTensor:
		d, err := t.GetContents()
		if err != nil {
			return fmt.Errorf("output %q: %w", p.Name, err)
		}
		for k := 0; k < w; k++ {
			col := res.str[p.col+k]
			for r := 0; r < nb; r++ {
				col[start+r] = d[r*w+k]
			}
		}
	default:
		return fmt.Errorf("%w: output %q has an unexpected type %T", infer.ErrUnsupported, p.Name, v)
	}
	return nil
}

func putFloats[T float32 | float64](p *outputPlan, d []T, start int, res *result) {
	w := p.width
	nb := len(d) / w
	if w == 1 {
		col := res.f64[p.col][start : start+nb]
		for r, v := range d {
			col[r] = float64(v)
		}
	} else {
		for k := 0; k < w; k++ {
			col := res.f64[p.col+k][start : start+nb]
			for r := range col {
				col[r] = float64(d[r*w+k])
			}
		}
	}
	if p.role == roleArgmax {
		pred := res.i64[0][start : start+nb]
		for r := range pred {
			row := d[r*w : (r+1)*w]
			best := 0
			for k := 1; k < w; k++ {
				if row[k] > row[best] {
					best = k
				}
			}
			pred[r] = int64(best)
		}
	}
}

func putInts[T int32 | int64](p *outputPlan, d []T, start int, res *result) {
	w := p.width
	nb := len(d) / w
	for k := 0; k < w; k++ {
		col := res.i64[p.col+k][start : start+nb]
		for r := range col {
			col[r] = int64(d[r*w+k])
		}
	}
}

func (m *model) build(res *result, n int) arrow.RecordBatch {
	arrs := make([]arrow.Array, m.out.NumFields())
	for i, f := range m.out.Fields() {
		switch f.Type.ID() {
		case arrow.FLOAT64:
			arrs[i] = infer.Float64Array(res.f64[i])
		case arrow.INT64:
			arrs[i] = infer.Int64Array(res.i64[i])
		case arrow.STRING:
			b := array.NewStringBuilder(memory.DefaultAllocator)
			b.AppendValues(res.str[i], nil)
			arrs[i] = b.NewArray()
			b.Release()
		case arrow.BOOL:
			b := array.NewBooleanBuilder(memory.DefaultAllocator)
			b.AppendValues(res.bits[i], nil)
			arrs[i] = b.NewArray()
			b.Release()
		}
	}
	rec := array.NewRecordBatch(m.out, arrs, int64(n))
	for _, a := range arrs {
		a.Release()
	}
	return rec
}
