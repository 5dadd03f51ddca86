package serve

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// collect is a model's batcher: it takes the first queued request, gathers
// more until the batch holds MaxBatchRows rows or MaxDelay has passed since
// the first one was queued, and hands the batch to a worker. While every
// worker is busy the hand-off blocks and new requests wait in the queue,
// so batches grow with the load. After Shutdown (quit) it flushes what is
// still queued and exits.
func (s *Server) collect(m *model) {
	defer s.batchers.Done()
	defer close(m.work)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var carry *call // a request that did not fit in the previous batch
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-m.queue:
			case <-s.quit:
				s.flush(m)
				return
			}
		}
		if dropped(first) {
			continue
		}
		batch := []*call{first}
		rows := first.n
		if rows < s.opts.MaxBatchRows {
			timer.Reset(time.Until(first.at.Add(s.opts.MaxDelay)))
		fill:
			for rows < s.opts.MaxBatchRows {
				// Requests already queued join at once, even when the
				// window has passed (the workers were busy); only an
				// empty queue waits for the timer.
				var c *call
				select {
				case c = <-m.queue:
				default:
					select {
					case c = <-m.queue:
					case <-timer.C:
						break fill
					}
				}
				if dropped(c) {
					continue
				}
				if rows+c.n > s.opts.MaxBatchRows {
					carry = c
					break fill
				}
				batch = append(batch, c)
				rows += c.n
			}
			timer.Stop()
		}
		m.work <- batch
	}
}

// flush sends everything still queued to the workers, in batches.
func (s *Server) flush(m *model) {
	var batch []*call
	rows := 0
	for {
		select {
		case c := <-m.queue:
			if dropped(c) {
				continue
			}
			if len(batch) > 0 && rows+c.n > s.opts.MaxBatchRows {
				m.work <- batch
				batch, rows = nil, 0
			}
			batch = append(batch, c)
			rows += c.n
		default:
			if len(batch) > 0 {
				m.work <- batch
			}
			return
		}
	}
}

// dropped answers and releases a request whose context is done (its
// handler has given up); it reports whether it did.
func dropped(c *call) bool {
	if err := c.ctx.Err(); err != nil {
		releaseArrays(c.cols)
		c.done <- callResult{err: err}
		return true
	}
	return false
}

func (s *Server) worker(m *model) {
	defer s.batchers.Done()
	for batch := range m.work {
		s.run(m, batch)
	}
}

// run scores a batch with one Predict call and hands each request its
// slice of the output. An error goes to every request of the batch.
func (s *Server) run(m *model, batch []*call) {
	rows := 0
	for _, c := range batch {
		rows += c.n
	}
	var cols []arrow.Array
	if len(batch) == 1 {
		cols = batch[0].cols
	} else {
		cols = make([]arrow.Array, len(m.fams))
		parts := make([]arrow.Array, len(batch))
		for j := range cols {
			for i, c := range batch {
				parts[i] = c.cols[j]
			}
			col, err := array.Concatenate(parts, m.mem)
			if err != nil {
				releaseArrays(cols[:j])
				for _, c := range batch {
					releaseArrays(c.cols)
					c.done <- callResult{err: fmt.Errorf("concatenating requests: %w", err)}
				}
				return
			}
			cols[j] = col
		}
		for _, c := range batch {
			releaseArrays(c.cols)
		}
	}
	rec := array2rec(m.req, cols, rows)
	ctx, cancel := context.WithTimeout(s.base, s.opts.RequestTimeout)
	m.predicts.Add(1)
	out, err := m.m.Predict(ctx, rec)
	cancel()
	rec.Release()
	if err == nil && out.NumRows() != int64(rows) {
		out.Release()
		err = fmt.Errorf("model returned %d rows for %d", out.NumRows(), rows)
	}
	if err != nil {
		for _, c := range batch {
			c.done <- callResult{err: err}
		}
		return
	}
	if len(batch) == 1 {
		batch[0].done <- callResult{rec: out}
		return
	}
	off := int64(0)
	for _, c := range batch {
		c.done <- callResult{rec: out.NewSlice(off, off+int64(c.n))}
		off += int64(c.n)
	}
	out.Release()
}

// array2rec makes a record batch of cols (which it takes over: the batch
// holds the only references once the caller releases it).
func array2rec(schema *arrow.Schema, cols []arrow.Array, n int) arrow.RecordBatch {
	rec := array.NewRecordBatch(schema, cols, int64(n))
	releaseArrays(cols)
	return rec
}

func releaseArrays(cols []arrow.Array) {
	for _, c := range cols {
		if c != nil {
			c.Release()
		}
	}
}

// emptyRecord is a batch of schema with no rows.
func emptyRecord(schema *arrow.Schema, mem memory.Allocator) arrow.RecordBatch {
	cols := make([]arrow.Array, schema.NumFields())
	for i, f := range schema.Fields() {
		cols[i] = array.MakeArrayOfNull(mem, f.Type, 0)
	}
	return array2rec(schema, cols, 0)
}
