package coordinator

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// NewProgress reports progress for people: on a terminal, one line kept up
// to date (partitions done/total, rows, rows/s, ETA); otherwise a log line
// at most every interval. Stop ends the terminal refresh.
func NewProgress(w io.Writer, tty bool, log *slog.Logger, interval time.Duration) *Reporter {
	r := &Reporter{w: w, tty: tty, log: log, interval: interval, stop: make(chan struct{})}
	if tty {
		go r.loop()
	}
	return r
}

// Reporter implements Progress.
type Reporter struct {
	w        io.Writer
	tty      bool
	log      *slog.Logger
	interval time.Duration
	stop     chan struct{}
	once     sync.Once

	mu        sync.Mutex
	task      string
	total     int
	done      int
	rowsTotal int64
	rowsIn    int64
	rowsOut   int64
	started   time.Time
	lastLog   time.Time
	drawn     bool
}

var _ Progress = (*Reporter)(nil)

// TaskStarted implements Progress.
func (r *Reporter) TaskStarted(task string, partitions int, rows int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.task, r.total, r.done, r.rowsTotal, r.rowsIn, r.rowsOut = task, partitions, 0, rows, 0, 0
	r.started, r.lastLog = time.Now(), time.Now()
}

// PartitionDone implements Progress.
func (r *Reporter) PartitionDone(task string, rowsIn, rowsOut int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done++
	r.rowsIn += rowsIn
	r.rowsOut += rowsOut
	if !r.tty && time.Since(r.lastLog) >= r.interval {
		r.lastLog = time.Now()
		r.log.Info("progress", "task", task, "partitions_done", r.done, "partitions", r.total,
			"rows_in", r.rowsIn, "rows_per_s", int64(r.rate()), "eta_s", int64(r.eta().Seconds()))
	}
}

// TaskDone implements Progress.
func (r *Reporter) TaskDone(task string, tr TaskResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tty {
		r.clear()
		fmt.Fprintf(r.w, "%s %s: %d partitions, %s rows in, %s rows out, %s, %.1fs\n", mark(tr.Status), task, tr.Partitions,
			human(float64(tr.RowsIn)), human(float64(tr.RowsOut)), bytesHuman(tr.BytesOut), float64(tr.DurationMS)/1000)
	}
	r.task = ""
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
			if r.task != "" {
				eta := "-"
				if r.done > 0 {
					eta = r.eta().Round(time.Second).String()
				}
				fmt.Fprintf(r.w, "\r\033[K[%s] %d/%d partitions · %s rows · %s rows/s · ETA %s",
					r.task, r.done, r.total, human(float64(r.rowsIn)), human(r.rate()), eta)
				r.drawn = true
			}
			r.mu.Unlock()
		}
	}
}

func (r *Reporter) clear() {
	if r.drawn {
		fmt.Fprint(r.w, "\r\033[K")
		r.drawn = false
	}
}

func (r *Reporter) rate() float64 {
	s := time.Since(r.started).Seconds()
	if s <= 0 {
		return 0
	}
	return float64(r.rowsIn) / s
}

func (r *Reporter) eta() time.Duration {
	if r.done == 0 {
		return 0
	}
	el := time.Since(r.started)
	if r.rowsTotal > 0 && r.rowsIn > 0 {
		return time.Duration(float64(el) * float64(r.rowsTotal-r.rowsIn) / float64(r.rowsIn))
	}
	return time.Duration(float64(el) * float64(r.total-r.done) / float64(r.done))
}

func mark(status string) string {
	if status == StatusSucceeded {
		return "✓"
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
