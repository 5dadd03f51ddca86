package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/engine"
	"github.com/liminal-data/liminal/infer"
	"github.com/liminal-data/liminal/internal/arrowref"
)

// models caches loaded models by configuration, so that a model shared by
// tasks (or runs of a long-lived worker) is loaded once.
type models struct {
	mu     sync.Mutex
	byKey  map[string]infer.Model
	byTask map[*coordinator.Task]*scorer
}

func (ms *models) open(cfg infer.Config) (infer.Model, error) {
	key, _ := json.Marshal(cfg)
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if m, ok := ms.byKey[string(key)]; ok {
		return m, nil
	}
	m, err := infer.Open(cfg)
	if err != nil {
		return nil, err
	}
	if ms.byKey == nil {
		ms.byKey = map[string]infer.Model{}
	}
	ms.byKey[string(key)] = m
	return m, nil
}

func (ms *models) close() error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var errs []error
	for _, m := range ms.byKey {
		errs = append(errs, m.Close())
	}
	ms.byKey, ms.byTask = nil, nil
	return errors.Join(errs...)
}

// scorer is the model step of one task: the model, its binding to the
// query's columns, and the columns of the result. It implements
// engine.Scorer.
type scorer struct {
	model   infer.Model
	bind    *infer.Binding
	all     bool  // the model reads every column (a command model without inputs)
	keep    []int // input columns passed through
	outName []string
	schema  *arrow.Schema // nil until known for models that declare no outputs
}

// newScorer loads the task's model and checks it against the query's
// result schema: every problem is reported before any partition runs.
func (w *Worker) newScorer(t *coordinator.Task, in *arrow.Schema) (*scorer, error) {
	sc := t.Score
	fail := func(err error) error {
		e := coordinator.WithOrigin(sc.Origin, err)
		// What the spec can fix (bindings, formats, unsupported model
		// features) is invalid (exit 2); a missing or corrupt model file is
		// a failed run (exit 1). Neither is retried.
		if errors.Is(err, infer.ErrBinding) || errors.Is(err, infer.ErrUnsupported) || errors.Is(err, infer.ErrUnknownFormat) {
			return coordinator.Invalid(connectors.Permanent(e))
		}
		return connectors.Permanent(e)
	}
	cfg, err := ModelConfig(sc.Dir, &sc.Model)
	if err != nil {
		return nil, fail(err)
	}
	m, err := w.models.open(cfg)
	if err != nil {
		return nil, fail(err)
	}
	s := &scorer{model: m, all: infer.AllColumns(m)}
	if !s.all {
		if s.bind, err = infer.Bind(m, in); err != nil {
			return nil, fail(err)
		}
	}
	keep := sc.Output.Columns
	if len(keep) == 0 {
		for _, f := range in.Fields() {
			keep = append(keep, f.Name)
		}
	}
	var missing []string
	for _, c := range keep {
		idx := in.FieldIndices(c)
		if len(idx) == 0 {
			missing = append(missing, c)
			continue
		}
		s.keep = append(s.keep, idx[0])
	}
	if len(missing) > 0 {
		return nil, fail(fmt.Errorf("%w: output columns [%s] not found in the input columns [%s]", infer.ErrBinding,
			strings.Join(missing, ", "), fieldNames(in)))
	}
	if out := m.OutputSchema(); out != nil {
		names, err := outputNames(out, sc.Output.Prediction, sc.Output.Probabilities)
		if err != nil {
			return nil, fail(err)
		}
		s.outName = names
		if s.schema, err = s.resultSchema(in, s.keep, out); err != nil {
			return nil, fail(err)
		}
	} else if sc.Output.Prediction != "" || len(sc.Output.Probabilities) > 0 {
		return nil, fail(fmt.Errorf("%w: output.prediction and output.probabilities need a model with declared outputs", infer.ErrBinding))
	}
	return s, nil
}

// outputNames renames a model's standard output columns as the spec asks.
func outputNames(out *arrow.Schema, prediction string, probs []string) ([]string, error) {
	names := make([]string, out.NumFields())
	var nprob int
	for i, f := range out.Fields() {
		names[i] = f.Name
		if strings.HasPrefix(f.Name, infer.ProbabilityPrefix) {
			nprob++
		}
	}
	if prediction != "" {
		i := out.FieldIndices(infer.PredictionColumn)
		if len(i) == 0 {
			return nil, fmt.Errorf("%w: output.prediction renames the model's %q column, which it does not have (it has %s)",
				infer.ErrBinding, infer.PredictionColumn, fieldNames(out))
		}
		names[i[0]] = prediction
	}
	if len(probs) > 0 {
		if len(probs) != nprob {
			return nil, fmt.Errorf("%w: output.probabilities names %d columns, the model has %d class probabilities",
				infer.ErrBinding, len(probs), nprob)
		}
		k := 0
		for i, f := range out.Fields() {
			if strings.HasPrefix(f.Name, infer.ProbabilityPrefix) {
				names[i] = probs[k]
				k++
			}
		}
	}
	return names, nil
}

// resultSchema is the kept input columns followed by the model's outputs.
func (s *scorer) resultSchema(in *arrow.Schema, keep []int, out *arrow.Schema) (*arrow.Schema, error) {
	fields := make([]arrow.Field, 0, len(keep)+out.NumFields())
	seen := map[string]bool{}
	for _, i := range keep {
		f := in.Field(i)
		fields = append(fields, f)
		seen[strings.ToLower(f.Name)] = true
	}
	for i, f := range out.Fields() {
		if s.outName != nil {
			f.Name = s.outName[i]
		}
		f.Nullable = true
		if seen[strings.ToLower(f.Name)] {
			return nil, fmt.Errorf("%w: the model's output column %q collides with an input column; rename it with output.prediction/output.probabilities or list output.columns",
				infer.ErrBinding, f.Name)
		}
		seen[strings.ToLower(f.Name)] = true
		fields = append(fields, f)
	}
	return arrow.NewSchema(fields, nil), nil
}

func fieldNames(s *arrow.Schema) string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// Score implements engine.Scorer: batches are scored one ahead of the
// engine's writer, so scoring and writing overlap.
func (s *scorer) Score(ctx context.Context, in array.RecordReader) (array.RecordReader, error) {
	if sm, ok := s.model.(infer.StreamModel); ok {
		return s.scoreStream(ctx, sm, in)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := newScoredReader(cancel, s.schema, in.Release)
	go func() {
		defer close(r.ch)
		for in.Next() {
			out, err := s.scoreBatch(ctx, in.RecordBatch())
			select {
			case r.ch <- scored{out, err}:
			case <-ctx.Done():
				if out != nil {
					out.Release()
				}
				return
			}
			if err != nil {
				return
			}
		}
		if err := in.Err(); err != nil {
			select {
			case r.ch <- scored{err: err}:
			case <-ctx.Done():
			}
		}
	}()
	return r.peek(s, in.Schema())
}

// peek learns the result schema from the first batch when the model
// declares no outputs (a command model): DuckDB asks for the schema before
// any batch. An empty input then gives only the kept columns.
func (r *scoredReader) peek(s *scorer, in *arrow.Schema) (array.RecordReader, error) {
	if r.schema != nil {
		return r, nil
	}
	first, ok := <-r.ch
	switch {
	case !ok:
		fields := make([]arrow.Field, len(s.keep))
		for i, c := range s.keep {
			fields[i] = in.Field(c)
		}
		r.schema = arrow.NewSchema(fields, nil)
	case first.err != nil:
		r.Release()
		return nil, first.err
	default:
		r.schema = first.b.Schema()
		r.pending = &first
	}
	return r, nil
}

func (s *scorer) scoreBatch(ctx context.Context, b arrow.RecordBatch) (arrow.RecordBatch, error) {
	var inputs arrow.RecordBatch
	if s.all {
		inputs = b
		inputs.Retain()
	} else {
		inputs = s.bind.Inputs(b)
	}
	pred, err := s.model.Predict(ctx, inputs)
	inputs.Release()
	if err != nil {
		return nil, scoreError(err)
	}
	defer pred.Release()
	if pred.NumRows() != b.NumRows() {
		return nil, connectors.Permanent(fmt.Errorf("model returned %d rows for %d", pred.NumRows(), b.NumRows()))
	}
	return s.join(b, s.keep, pred)
}

// join puts the kept input columns and the predictions side by side.
func (s *scorer) join(b arrow.RecordBatch, keep []int, pred arrow.RecordBatch) (arrow.RecordBatch, error) {
	schema := s.schema
	if schema == nil { // a model without declared outputs: its batches say
		var err error
		if schema, err = s.resultSchema(b.Schema(), keep, pred.Schema()); err != nil {
			return nil, connectors.Permanent(err)
		}
	}
	cols := make([]arrow.Array, 0, schema.NumFields())
	for _, i := range keep {
		cols = append(cols, b.Column(i))
	}
	for i := 0; i < int(pred.NumCols()); i++ {
		cols = append(cols, pred.Column(i))
	}
	if len(cols) != schema.NumFields() {
		return nil, connectors.Permanent(fmt.Errorf("model returned %d columns, expected %d", pred.NumCols(), schema.NumFields()-len(keep)))
	}
	for i, c := range cols {
		if !arrow.TypeEqual(c.DataType(), schema.Field(i).Type) {
			return nil, connectors.Permanent(fmt.Errorf("column %q: model returned %s, expected %s", schema.Field(i).Name, c.DataType(), schema.Field(i).Type))
		}
	}
	return array.NewRecordBatch(schema, cols, b.NumRows()), nil
}

// scoreError classifies a model error: problems with the model or the data
// are permanent; anything else (a user program that crashed or timed out)
// is retried.
func scoreError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, infer.ErrBinding) || errors.Is(err, infer.ErrCorrupt) || errors.Is(err, infer.ErrUnsupported) {
		return connectors.Permanent(fmt.Errorf("score: %w", err))
	}
	return connectors.Transient(fmt.Errorf("score: %w", err))
}

type scored struct {
	b   arrow.RecordBatch
	err error
}

// scoredReader hands the engine the batches the scoring goroutine made.
type scoredReader struct {
	arrowref.Count
	release []func() // what it owns: the input (and a stream model's output)
	cancel  context.CancelFunc
	ch      chan scored
	schema  *arrow.Schema
	cur     arrow.RecordBatch
	pending *scored // the first batch, read early for its schema
	err     error
}

func newScoredReader(cancel context.CancelFunc, schema *arrow.Schema, release ...func()) *scoredReader {
	r := &scoredReader{release: release, cancel: cancel, ch: make(chan scored, 2), schema: schema}
	r.Init(r.free)
	return r
}

func (r *scoredReader) Schema() *arrow.Schema { return r.schema }

func (r *scoredReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.err != nil {
		return false
	}
	var s scored
	var ok bool
	if r.pending != nil {
		s, ok = *r.pending, true
		r.pending = nil
	} else if s, ok = <-r.ch; !ok {
		return false
	}
	if s.err != nil {
		r.err = s.err
		return false
	}
	if !r.schema.Equal(s.b.Schema()) {
		s.b.Release()
		r.err = connectors.Permanent(fmt.Errorf("model output changed schema between batches: %s, then %s", r.schema, s.b.Schema()))
		return false
	}
	r.cur = s.b
	return true
}

func identity(n int) []int {
	ix := make([]int, n)
	for i := range ix {
		ix[i] = i
	}
	return ix
}

func (r *scoredReader) RecordBatch() arrow.RecordBatch { return r.cur }
func (r *scoredReader) Record() arrow.RecordBatch      { return r.cur }
func (r *scoredReader) Err() error                     { return r.err }

// Release stops the scoring goroutine, waits for it and frees what is
// left, including the input. Idempotent.
// free runs on the last Release: it stops the scoring goroutine, drops
// the batches it made and releases what the reader owns.
func (r *scoredReader) free() {
	r.cancel()
	for s := range r.ch {
		if s.b != nil {
			s.b.Release()
		}
	}
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.pending != nil && r.pending.b != nil {
		r.pending.b.Release()
		r.pending = nil
	}
	for _, f := range r.release {
		f()
	}
}

var _ engine.Scorer = (*scorer)(nil)

// scoreStream runs a stream model (a user program) over the whole
// partition, joining its output rows back to the kept input columns.
func (s *scorer) scoreStream(ctx context.Context, sm infer.StreamModel, in array.RecordReader) (array.RecordReader, error) {
	ctx, cancel := context.WithCancel(ctx)
	// The model's input stream: the bound columns of each batch; the kept
	// columns wait in a queue for the matching output rows.
	q := &keptQueue{}
	feed := &feedReader{in: in, s: s, q: q}
	feed.Init(feed.free)
	outR, err := sm.PredictStream(ctx, feed)
	if err != nil {
		cancel()
		in.Release()
		return nil, scoreError(err)
	}
	r := newScoredReader(cancel, s.schema, outR.Release, feed.Release, in.Release)
	go func() {
		defer close(r.ch)
		for outR.Next() {
			pred := outR.RecordBatch()
			kept, err := q.take(pred.NumRows())
			var out arrow.RecordBatch
			if err == nil {
				out, err = s.join(kept, identity(len(s.keep)), pred)
				kept.Release()
			}
			select {
			case r.ch <- scored{out, err}:
			case <-ctx.Done():
				if out != nil {
					out.Release()
				}
				return
			}
			if err != nil {
				return
			}
		}
		err := outR.Err()
		if err == nil && q.rows() != 0 {
			err = fmt.Errorf("model returned %d fewer rows than it was given", q.rows())
		}
		if err != nil {
			select {
			case r.ch <- scored{err: scoreError(err)}:
			case <-ctx.Done():
			}
		}
	}()
	return r.peek(s, in.Schema())
}

// feedReader gives a stream model the columns it reads of each input batch
// and queues the kept columns of the same rows.
type feedReader struct {
	arrowref.Count
	in  array.RecordReader
	s   *scorer
	q   *keptQueue
	cur arrow.RecordBatch
}

func (f *feedReader) Schema() *arrow.Schema {
	if f.s.all {
		return f.in.Schema()
	}
	return f.s.model.InputSchema()
}

// free drops the current batch; the input stays the scorer's.
func (f *feedReader) free() {
	if f.cur != nil {
		f.cur.Release()
		f.cur = nil
	}
}

func (f *feedReader) Next() bool {
	if f.cur != nil {
		f.cur.Release()
		f.cur = nil
	}
	if !f.in.Next() {
		return false
	}
	b := f.in.RecordBatch()
	cols := make([]arrow.Array, len(f.s.keep))
	fields := make([]arrow.Field, len(f.s.keep))
	for i, c := range f.s.keep {
		cols[i], fields[i] = b.Column(c), b.Schema().Field(c)
	}
	f.q.push(array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, b.NumRows()))
	if f.s.all {
		b.Retain()
		f.cur = b
	} else {
		f.cur = f.s.bind.Inputs(b)
	}
	return true
}
func (f *feedReader) RecordBatch() arrow.RecordBatch { return f.cur }
func (f *feedReader) Record() arrow.RecordBatch      { return f.cur }
func (f *feedReader) Err() error                     { return f.in.Err() }

// keptQueue holds the pass-through columns of rows sent to a stream model
// until its output rows for them arrive (batch boundaries may differ).
type keptQueue struct {
	mu    sync.Mutex
	batch []arrow.RecordBatch
	off   int64 // rows of batch[0] already taken
}

func (q *keptQueue) push(b arrow.RecordBatch) {
	q.mu.Lock()
	q.batch = append(q.batch, b)
	q.mu.Unlock()
}

func (q *keptQueue) rows() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	var n int64
	for _, b := range q.batch {
		n += b.NumRows()
	}
	return n - q.off
}

// take removes the next n rows as one batch.
func (q *keptQueue) take(n int64) (arrow.RecordBatch, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var parts []arrow.RecordBatch
	defer func() {
		for _, p := range parts {
			p.Release()
		}
	}()
	need := n
	for need > 0 {
		if len(q.batch) == 0 {
			return nil, fmt.Errorf("model returned more rows than it was given")
		}
		b := q.batch[0]
		avail := b.NumRows() - q.off
		k := min(avail, need)
		parts = append(parts, b.NewSlice(q.off, q.off+k))
		q.off += k
		need -= k
		if q.off == b.NumRows() {
			b.Release()
			q.batch = slices.Delete(q.batch, 0, 1)
			q.off = 0
		}
	}
	if len(parts) == 1 {
		parts[0].Retain()
		return parts[0], nil
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("empty output batch")
	}
	return concatBatches(parts)
}

func concatBatches(parts []arrow.RecordBatch) (arrow.RecordBatch, error) {
	sc := parts[0].Schema()
	cols := make([]arrow.Array, sc.NumFields())
	var n int64
	for _, p := range parts {
		n += p.NumRows()
	}
	for c := range cols {
		arrs := make([]arrow.Array, len(parts))
		for i, p := range parts {
			arrs[i] = p.Column(c)
		}
		a, err := array.Concatenate(arrs, nil)
		if err != nil {
			return nil, err
		}
		defer a.Release()
		cols[c] = a
	}
	return array.NewRecordBatch(sc, cols, n), nil
}

// arrowColumns lists a schema's columns for the plan's description.
func arrowColumns(s *arrow.Schema) []engine.Column {
	cols := make([]engine.Column, s.NumFields())
	for i, f := range s.Fields() {
		cols[i] = engine.Column{Name: f.Name, Type: duckType(f.Type)}
	}
	return cols
}

// duckType names an Arrow type as DuckDB does, for the plan's description
// (and empty outputs); VARCHAR for what scoring never produces.
func duckType(t arrow.DataType) string {
	switch t.ID() {
	case arrow.FLOAT64:
		return "DOUBLE"
	case arrow.FLOAT32:
		return "FLOAT"
	case arrow.INT64:
		return "BIGINT"
	case arrow.INT32:
		return "INTEGER"
	case arrow.INT16:
		return "SMALLINT"
	case arrow.INT8:
		return "TINYINT"
	case arrow.BOOL:
		return "BOOLEAN"
	case arrow.DATE32:
		return "DATE"
	case arrow.TIMESTAMP:
		return "TIMESTAMP"
	}
	return "VARCHAR"
}
