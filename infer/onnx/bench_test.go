package onnx

import (
	"context"
	"encoding/binary"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/liminal-data/liminal/infer"
)

// BenchmarkONNX scores 1M rows of 50 float32 features in batches of 65536
// (a partition's batch) with an MLP 50 -> 256 -> 256 -> 3 (Gemm/Relu,
// Softmax head) on one intra-op thread, through infer.Open/Bind/Predict as
// the engine calls it: Arrow columns in, Arrow columns out.
//
// testdata/bench.py runs it side by side with onnxruntime's Python
// InferenceSession on the same model, data and batch size and prints the
// ratio; -onnx.dump DIR writes the model (bench_mlp.onnx) and the rows
// (bench_rows.f32, row-major little-endian float32) for it.
var benchDump = flag.String("onnx.dump", "", "write the benchmark model and rows to this directory")

const (
	benchRows  = 1 << 20
	benchBatch = 1 << 16
	benchNF    = 50
)

var benchLayers = []int{benchNF, 256, 256, 3}

func BenchmarkONNX(b *testing.B) {
	needRuntime(b)
	dir := *benchDump
	if dir == "" {
		dir = b.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	modelPath := filepath.Join(dir, "bench_mlp.onnx")
	if err := os.WriteFile(modelPath, mlpONNX(benchLayers, 1), 0o644); err != nil {
		b.Fatal(err)
	}
	rows := benchMatrix(benchRows, benchNF, 2)
	if *benchDump != "" {
		buf := make([]byte, 4*len(rows))
		for i, v := range rows {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if err := os.WriteFile(filepath.Join(dir, "bench_rows.f32"), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	rec := columnsOf(rows, benchRows, benchNF)
	defer rec.Release()
	m, err := infer.Open(infer.Config{Format: "onnx", Path: modelPath, Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	bind, err := infer.Bind(m, rec.Schema())
	if err != nil {
		b.Fatal(err)
	}
	batches := make([]arrow.RecordBatch, 0, benchRows/benchBatch)
	for start := 0; start < benchRows; start += benchBatch {
		part := rec.NewSlice(int64(start), int64(min(benchRows, start+benchBatch)))
		batches = append(batches, bind.Inputs(part))
		part.Release()
	}
	defer func() {
		for _, p := range batches {
			p.Release()
		}
	}()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	n := 0
	for b.Loop() {
		for _, p := range batches {
			res, err := m.Predict(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			res.Release()
		}
		n++
	}
	b.ReportMetric(float64(n*benchRows)/time.Since(start).Seconds(), "rows/s")
}

// benchMatrix is n rows of nf standard normal float32 values, row-major.
func benchMatrix(n, nf int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n*nf)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// columnsOf turns a row-major matrix into a record of float32 columns
// f0..f{nf-1}.
func columnsOf(x []float32, n, nf int) arrow.RecordBatch {
	fields := make([]arrow.Field, nf)
	cols := make([]arrow.Array, nf)
	for c := 0; c < nf; c++ {
		fields[c] = arrow.Field{Name: "f" + itoa(c), Type: arrow.PrimitiveTypes.Float32, Nullable: true}
		b := array.NewFloat32Builder(memory.DefaultAllocator)
		b.Reserve(n)
		for r := 0; r < n; r++ {
			b.UnsafeAppend(x[r*nf+c])
		}
		cols[c] = b.NewArray()
		b.Release()
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n))
	for _, a := range cols {
		a.Release()
	}
	return rec
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// mlpWeights are the deterministic weights of mlpONNX: per layer a
// row-major [in,out] matrix and a bias.
func mlpWeights(layers []int, seed uint64) (ws, bs [][]float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for l := 0; l+1 < len(layers); l++ {
		in, out := layers[l], layers[l+1]
		scale := 1 / math.Sqrt(float64(in))
		w := make([]float32, in*out)
		for i := range w {
			w[i] = float32(rng.NormFloat64() * scale)
		}
		b := make([]float32, out)
		for i := range b {
			b[i] = float32(rng.NormFloat64() * 0.1)
		}
		ws, bs = append(ws, w), append(bs, b)
	}
	return ws, bs
}

// mlpONNX encodes an MLP as an ONNX model (opset 17): input "input"
// [N, layers[0]], Gemm+Relu hidden layers, a Gemm and a Softmax to
// "output" [N, layers[last]] — the shape of a PyTorch/Keras export.
func mlpONNX(layers []int, seed uint64) []byte {
	ws, bs := mlpWeights(layers, seed)
	var graph pbuf
	prev := "input"
	for l := range ws {
		wn, bn, out := "W"+itoa(l), "B"+itoa(l), "h"+itoa(l)
		graph.msg(1, func(n *pbuf) { // node
			n.str(1, prev)
			n.str(1, wn)
			n.str(1, bn)
			n.str(2, out)
			n.str(3, "gemm"+itoa(l))
			n.str(4, "Gemm")
		})
		prev = out
		if l+1 < len(ws) {
			relu := out + "_relu"
			graph.msg(1, func(n *pbuf) {
				n.str(1, out)
				n.str(2, relu)
				n.str(3, "relu"+itoa(l))
				n.str(4, "Relu")
			})
			prev = relu
		}
	}
	graph.msg(1, func(n *pbuf) {
		n.str(1, prev)
		n.str(2, "output")
		n.str(3, "softmax")
		n.str(4, "Softmax")
		n.msg(5, func(a *pbuf) { // attribute axis=1
			a.str(1, "axis")
			a.int(3, 1)
			a.int(20, 2) // INT
		})
	})
	graph.str(2, "mlp")
	tensor := func(name string, dims []int, v []float32) {
		graph.msg(5, func(t *pbuf) { // initializer
			for _, d := range dims {
				t.int(1, int64(d))
			}
			t.int(2, 1) // FLOAT
			t.str(8, name)
			raw := make([]byte, 4*len(v))
			for i, f := range v {
				binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
			}
			t.bytes(9, raw)
		})
	}
	for l := range ws {
		tensor("W"+itoa(l), []int{layers[l], layers[l+1]}, ws[l])
		tensor("B"+itoa(l), []int{layers[l+1]}, bs[l])
	}
	valueInfo := func(field int, name string, width int) {
		graph.msg(field, func(v *pbuf) {
			v.str(1, name)
			v.msg(2, func(tp *pbuf) { // TypeProto
				tp.msg(1, func(tt *pbuf) { // Tensor
					tt.int(1, 1) // FLOAT
					tt.msg(2, func(sh *pbuf) {
						sh.msg(1, func(d *pbuf) { d.str(2, "N") })
						sh.msg(1, func(d *pbuf) { d.int(1, int64(width)) })
					})
				})
			})
		})
	}
	valueInfo(11, "input", layers[0])
	valueInfo(12, "output", layers[len(layers)-1])
	var model pbuf
	model.int(1, 8) // ir_version
	model.str(2, "liminal-test")
	model.msg(8, func(o *pbuf) { o.str(1, ""); o.int(2, 17) })
	model.bytes(7, graph.b)
	return model.b
}

// pbuf is a minimal protobuf writer.
type pbuf struct{ b []byte }

func (p *pbuf) varint(v uint64) { p.b = binary.AppendUvarint(p.b, v) }
func (p *pbuf) tag(field, wire int) {
	p.varint(uint64(field<<3 | wire))
}
func (p *pbuf) int(field int, v int64) { p.tag(field, 0); p.varint(uint64(v)) }
func (p *pbuf) bytes(field int, b []byte) {
	p.tag(field, 2)
	p.varint(uint64(len(b)))
	p.b = append(p.b, b...)
}
func (p *pbuf) str(field int, s string) { p.bytes(field, []byte(s)) }
func (p *pbuf) msg(field int, f func(*pbuf)) {
	var q pbuf
	f(&q)
	p.bytes(field, q.b)
}

// mlpReference computes the MLP in float64 for one row.
func mlpReference(layers []int, ws, bs [][]float32, x []float32) []float64 {
	h := make([]float64, len(x))
	for i, v := range x {
		h[i] = float64(v)
	}
	for l := range ws {
		in, out := layers[l], layers[l+1]
		next := make([]float64, out)
		for j := 0; j < out; j++ {
			s := float64(bs[l][j])
			for i := 0; i < in; i++ {
				s += h[i] * float64(ws[l][i*out+j])
			}
			if l+1 < len(ws) {
				s = max(s, 0)
			}
			next[j] = s
		}
		h = next
	}
	mx := h[0]
	for _, v := range h {
		mx = max(mx, v)
	}
	var sum float64
	for i, v := range h {
		h[i] = math.Exp(v - mx)
		sum += h[i]
	}
	for i := range h {
		h[i] /= sum
	}
	return h
}

// TestGoBuiltMLP checks the benchmark's model (encoded here, not by
// Python) against a float64 reference: rule (c) with an "input" tensor.
func TestGoBuiltMLP(t *testing.T) {
	needRuntime(t)
	layers := []int{12, 32, 16, 4}
	path := filepath.Join(t.TempDir(), "mlp.onnx")
	if err := os.WriteFile(path, mlpONNX(layers, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := infer.Open(infer.Config{Format: "onnx", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := schemaString(m.OutputSchema()); got != "prediction:int64,probability_0:float64,probability_1:float64,probability_2:float64,probability_3:float64" {
		t.Fatalf("outputs %s", got)
	}
	const n = 300
	x := benchMatrix(n, layers[0], 5)
	rec := columnsOf(x, n, layers[0])
	defer rec.Release()
	res, err := m.Predict(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	ws, bs := mlpWeights(layers, 3)
	pred := res.Column(0).(*array.Int64).Int64Values()
	for r := 0; r < n; r++ {
		want := mlpReference(layers, ws, bs, x[r*layers[0]:(r+1)*layers[0]])
		best := 0
		for k, v := range want {
			got := res.Column(1 + k).(*array.Float64).Value(r)
			if math.Abs(got-v) > 1e-5 {
				t.Fatalf("row %d class %d: %v, want %v", r, k, got, v)
			}
			if v > want[best] {
				best = k
			}
		}
		if pred[r] != int64(best) && math.Abs(want[pred[r]]-want[best]) > 1e-6 {
			t.Errorf("row %d: argmax %d, want %d", r, pred[r], best)
		}
	}
}

// BenchmarkONNXRun is BenchmarkONNX without liminal's Arrow work: the
// session runs on a ready row-major matrix, as the Python session does. The
// gap between the two is the cost of the Arrow transposition and output
// columns.
func BenchmarkONNXRun(b *testing.B) {
	needRuntime(b)
	modelPath := filepath.Join(b.TempDir(), "bench_mlp.onnx")
	if err := os.WriteFile(modelPath, mlpONNX(benchLayers, 1), 0o644); err != nil {
		b.Fatal(err)
	}
	rows := benchMatrix(benchRows, benchNF, 2)
	mi, err := infer.Open(infer.Config{Format: "onnx", Path: modelPath, Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer mi.Close()
	m := mi.(*model)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	n := 0
	for b.Loop() {
		for s := 0; s < benchRows; s += benchBatch {
			x := rows[s*benchNF : (s+benchBatch)*benchNF]
			t, err := ort.NewTensor(ort.NewShape(benchBatch, benchNF), x)
			if err != nil {
				b.Fatal(err)
			}
			out := []ort.Value{nil}
			if err := m.sess.Run([]ort.Value{t}, out); err != nil {
				b.Fatal(err)
			}
			t.Destroy()
			out[0].Destroy()
		}
		n++
	}
	b.ReportMetric(float64(n*benchRows)/time.Since(start).Seconds(), "rows/s")
}
