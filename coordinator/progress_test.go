package coordinator

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProgressConcurrentTasks: on a terminal, every running task has its
// own live line, finished tasks print a final line each.
func TestProgressConcurrentTasks(t *testing.T) {
	var w syncBuf
	r := NewProgress(&w, true, slog.New(slog.DiscardHandler), time.Second)
	r.TaskStarted("a", 4, 400)
	r.TaskStarted("b", 2, 0)
	r.PartitionDone("a", 100, 10)
	r.PartitionDone("b", 50, 5)
	time.Sleep(450 * time.Millisecond)
	live := w.String()
	if !strings.Contains(live, "a: 1/4 partitions") || !strings.Contains(live, "b: 1/2 partitions") {
		t.Fatalf("live block lacks a task:\n%q", live)
	}
	r.TaskDone("a", TaskResult{Status: StatusSucceeded, Partitions: 4, RowsIn: 400})
	r.TaskDone("b", TaskResult{Status: StatusSkipped})
	r.Stop()
	out := w.String()
	if !strings.Contains(out, "✓ a: succeeded, 4 partitions") || !strings.Contains(out, "- b: skipped") {
		t.Fatalf("final lines missing:\n%q", out)
	}
}

// TestProgressLogs: off a terminal, progress is logged per task.
func TestProgressLogs(t *testing.T) {
	var logs syncBuf
	r := NewProgress(&syncBuf{}, false, slog.New(slog.NewTextHandler(&logs, nil)), 0)
	r.TaskStarted("a", 2, 0)
	r.TaskStarted("b", 2, 0)
	r.PartitionDone("a", 10, 1)
	r.PartitionDone("b", 20, 2)
	r.Stop()
	if !strings.Contains(logs.String(), "task=a") || !strings.Contains(logs.String(), "task=b") {
		t.Fatalf("logs:\n%s", logs.String())
	}
}
