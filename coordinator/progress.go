package coordinator

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// NewProgress reports progress for people: on a terminal, a block of
// lines kept up to date, one per running task (partitions done/total, rows,
// rows/s, ETA), and a line per finished task; otherwise a log line per task
// at most every interval. Stop ends the terminal refresh.
func NewProgress(w io.Writer, tty bool, log *slog.Logger, interval time.Duration) *Reporter {
	r := &Reporter{w: w, tty: tty, log: log, interval: interval, stop: make(chan struct{}), tasks: map[string]*taskProgress{}}
	if tty {
		go r.loop()
	}
	return r
}

// Reporter implements Progress. Several tasks may run at once.
type Reporter struct {
	w        io.Writer
	tty      bool
	log      *slog.Logger
	interval time.Duration
	stop     chan struct{}
	once     sync.Once

	mu    sync.Mutex
	tasks map[string]*taskProgress
	order []string // running tasks, in start order
	drawn int      // lines of the live block on screen
}

type taskProgress struct {
	total, done                int
	rowsTotal, rowsIn, rowsOut int64
	started, lastLog           time.Time
}

var _ Progress = (*Reporter)(nil)

// TaskStarted implements Progress.
func (r *Reporter) TaskStarted(task string, partitions int, rows int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.tasks[task]; !ok {
		r.order = append(r.order, task)
	}
	now := time.Now()
	r.tasks[task] = &taskProgress{total: partitions, rowsTotal: rows, started: now, lastLog: now}
}

// PartitionDone implements Progress.
func (r *Reporter) PartitionDone(task string, rowsIn, rowsOut int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.tasks[task]
	if p == nil {
		return
	}
	p.done++
	p.rowsIn += rowsIn
	p.rowsOut += rowsOut
	if !r.tty && time.Since(p.lastLog) >= r.interval {
		p.lastLog = time.Now()
		r.log.Info("progress", "task", task, "partitions_done", p.done, "partitions", p.total,
			"rows_in", p.rowsIn, "rows_per_s", int64(p.rate()), "eta_s", int64(p.eta().Seconds()))
	}
}

// TaskDone implements Progress.
func (r *Reporter) TaskDone(task string, tr TaskResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.tasks, task)
	for i, n := range r.order {
		if n == task {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
	if r.tty {
		r.clear()
		fmt.Fprintf(r.w, "%s %s: %s, %d partitions, %s rows in, %s rows out, %s, %.1fs\n", mark(tr.Status), task, tr.Status, tr.Partitions,
			human(float64(tr.RowsIn)), human(float64(tr.RowsOut)), bytesHuman(tr.BytesOut), float64(tr.DurationMS)/1000)
		r.draw()
	}
}

// Stop ends the terminal refresh. Idempotent.
func (r *Reporter) Stop() {
	r.once.Do(func() {
		close(r.stop)
		r.mu.Lock()
		r.clear()
		r.mu.Unlock()
	})
}

func (r *Reporter) loop() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.mu.Lock()
			r.clear()
			r.draw()
			r.mu.Unlock()
		}
	}
}

// draw prints the live block: one line per running task.
func (r *Reporter) draw() {
	for _, name := range r.order {
		p := r.tasks[name]
		eta := "-"
		if p.done > 0 {
			eta = p.eta().Round(time.Second).String()
		}
		fmt.Fprintf(r.w, "\033[K  %s: %d/%d partitions · %s rows · %s rows/s · ETA %s\n",
			name, p.done, p.total, human(float64(p.rowsIn)), human(p.rate()), eta)
		r.drawn++
	}
}

// clear removes the live block from the screen.
func (r *Reporter) clear() {
	if r.drawn > 0 {
		fmt.Fprintf(r.w, "\033[%dA\r\033[J", r.drawn)
		r.drawn = 0
	}
}

func (p *taskProgress) rate() float64 {
	s := time.Since(p.started).Seconds()
	if s <= 0 {
		return 0
	}
	return float64(p.rowsIn) / s
}

func (p *taskProgress) eta() time.Duration {
	if p.done == 0 {
		return 0
	}
	el := time.Since(p.started)
	if p.rowsTotal > 0 && p.rowsIn > 0 {
		return time.Duration(float64(el) * float64(p.rowsTotal-p.rowsIn) / float64(p.rowsIn))
	}
	return time.Duration(float64(el) * float64(p.total-p.done) / float64(p.done))
}

func mark(status string) string {
	switch status {
	case StatusSucceeded:
		return "✓"
	case StatusSkipped:
		return "-"
	}
	return "✗"
}

func human(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.1fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func bytesHuman(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
