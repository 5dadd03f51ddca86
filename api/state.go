package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/liminal-data/liminal/coordinator"
)

// restarted is the error of runs that were queued or running when the
// previous coordinator process stopped.
const restarted = "coordinator restarted"

// stored is a run as kept in the state directory.
type stored struct {
	Fingerprint string `json:"fingerprint"`
	Run         Run    `json:"run"`
}

func (s *Server) runsDir() string { return filepath.Join(s.cfg.StateDir, "runs") }

// save writes r to the state directory, if there is one: a temporary file
// renamed into place, so that a crash never leaves half a file. Errors are
// logged: the run goes on in memory.
func (s *Server) save(r *run) {
	if s.cfg.StateDir == "" {
		return
	}
	snap := r.snapshot(true)
	b, err := json.MarshalIndent(stored{Fingerprint: r.fingerprint, Run: snap}, "", "  ")
	if err == nil {
		path := filepath.Join(s.runsDir(), snap.ID+".json")
		tmp := path + ".tmp"
		if err = os.WriteFile(tmp, b, 0o644); err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		s.log.Error("save run state", "run_id", snap.ID, "error", err)
	}
}

// load reads the runs of the state directory. Runs that were not over are
// marked failed: their process is gone.
func (s *Server) load() error {
	if s.cfg.StateDir == "" {
		return nil
	}
	if err := os.MkdirAll(s.runsDir(), 0o755); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	entries, err := os.ReadDir(s.runsDir())
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(s.runsDir(), e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		var st stored
		if err := json.Unmarshal(b, &st); err != nil || st.Run.ID == "" {
			s.log.Warn("skip unreadable run state", "file", path, "error", err)
			continue
		}
		r := &run{fingerprint: st.Fingerprint, info: st.Run, logs: newRing(1), log: slog.New(slog.DiscardHandler),
			done: make(chan struct{})}
		r.ctx, r.cancel = context.WithCancel(context.Background())
		r.cancel()
		close(r.done)
		if r.info.Tasks == nil {
			r.info.Tasks = []TaskProgress{}
		}
		if !final(r.info.Status) {
			now := time.Now().UTC()
			started := now
			if r.info.StartedAt != nil {
				started = *r.info.StartedAt
			}
			r.info.Status, r.info.FinishedAt, r.info.Error = coordinator.StatusFailed, &now, restarted
			r.info.Result = &coordinator.RunResult{RunID: r.info.ID, Pipeline: r.info.Pipeline, Status: coordinator.StatusFailed,
				ExitCode: 1, Error: restarted, StartedAt: started, FinishedAt: now, DurationMS: now.Sub(started).Milliseconds(),
				Tasks: []coordinator.TaskResult{}}
			for i := range r.info.Tasks {
				t := &r.info.Tasks[i]
				if !final(t.Status) {
					t.Status = coordinator.StatusFailed
				}
				for j := range t.Partitions {
					if p := &t.Partitions[j]; !final(p.Status) {
						p.Status = coordinator.StatusFailed
					}
				}
			}
			s.save(r)
			s.log.Warn("run was not over when the coordinator stopped; marked failed", "run_id", r.info.ID)
		}
		s.runs[r.info.ID] = r
	}
	return nil
}
