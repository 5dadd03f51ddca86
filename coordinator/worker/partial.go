package worker

import (
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/engine"
)

// ExportPartial writes the partial result table name (an AttemptResult's
// Partial) to out as an Arrow IPC stream: how a worker process hands a
// partition's partial result to the coordinator that runs the final stage.
func (w *Worker) ExportPartial(ctx context.Context, name string, out io.Writer) error {
	q := "SELECT * FROM " + ident(name)
	sc, err := w.eng.ResultSchema(ctx, q)
	if err != nil {
		return fmt.Errorf("export partial result: %w", err)
	}
	iw := &ipcWriter{out: out, w: ipc.NewWriter(out, ipc.WithSchema(sc))}
	_, err = w.eng.Execute(ctx, engine.Job{Query: q, Output: engine.Output{Writer: iw}})
	if err == nil {
		err = iw.close()
	} else {
		_ = iw.close()
	}
	if err != nil {
		return fmt.Errorf("export partial result: %w", err)
	}
	return nil
}

// ImportPartial reads an Arrow IPC stream written by ExportPartial into a
// new partial result table of this worker's engine and returns its name.
func (w *Worker) ImportPartial(ctx context.Context, in io.Reader) (string, int64, error) {
	rd, err := ipc.NewReader(in, ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return "", 0, fmt.Errorf("import partial result: %w", err)
	}
	name := w.eng.TableName("partial")
	res, err := w.eng.Execute(ctx, engine.Job{Query: "SELECT * FROM p",
		Tables: []engine.Table{{Name: "p", Reader: rd}}, Output: engine.Output{Memory: name}})
	if err != nil {
		return "", 0, fmt.Errorf("import partial result: %w", err)
	}
	return name, res.Rows, nil
}

// ipcWriter writes batches as one Arrow IPC stream (its schema first, so
// that a partial result without rows still has its columns).
type ipcWriter struct {
	out io.Writer
	w   *ipc.Writer
}

func (i *ipcWriter) Write(_ context.Context, b arrow.RecordBatch) error { return i.w.Write(b) }

func (i *ipcWriter) close() error { return i.w.Close() }
