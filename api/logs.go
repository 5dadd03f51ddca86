package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
)

// ring keeps the last lines of a run's log, each a JSON object written by
// a slog.JSONHandler, numbered from 1 ("seq"). It is an io.Writer: every
// Write is one record. Safe for concurrent use.
type ring struct {
	mu    sync.Mutex
	lines []json.RawMessage
	start int   // index of the oldest line once the ring is full
	seq   int64 // seq of the newest line
	max   int
}

func newRing(max int) *ring { return &ring{max: max} }

// Write implements io.Writer: p is one JSON record, which is stored with
// "seq" added as its first field.
func (r *ring) Write(p []byte) (int, error) {
	rec := bytes.TrimSpace(p)
	if len(rec) < 2 || rec[0] != '{' {
		return len(p), nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	line := make([]byte, 0, len(rec)+24)
	line = append(line, `{"seq":`...)
	line = strconv.AppendInt(line, r.seq, 10)
	if len(rec) > 2 {
		line = append(line, ',')
	}
	line = append(line, rec[1:]...)
	if len(r.lines) < r.max {
		r.lines = append(r.lines, line)
	} else {
		r.lines[r.start] = line
		r.start = (r.start + 1) % r.max
	}
	return len(p), nil
}

// since returns the lines after seq, oldest first, at most limit of them;
// next is the seq to ask from next time, and truncated says that lines
// after seq were dropped from the ring before they could be read.
func (r *ring) since(seq int64, limit int) (lines []json.RawMessage, next int64, truncated bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := r.seq - int64(len(r.lines)) + 1 // seq of the oldest line kept
	if seq < first-1 {
		truncated = true
		seq = first - 1
	}
	next = max(seq, 0)
	lines = []json.RawMessage{}
	for s := seq + 1; s <= r.seq && len(lines) < limit; s++ {
		i := (r.start + int(s-first)) % len(r.lines)
		lines = append(lines, r.lines[i])
		next = s
	}
	return lines, next, truncated
}
