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
	// Request is what the run was submitted with, kept so that a
	// coordinator with Config.Resume can start it again.
	Request *request `json:"request,omitempty"`
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
	st := stored{Fingerprint: r.fingerprint, Run: snap}
	if !final(snap.Status) && r.spec != nil {
		req := r.req
		st.Request = &req
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		path := filepath.Join(s.runsDir(), snap.ID+".json")
		tmp := path + ".tmp"
		// 0600: the request may hold the values of the spec's variables.
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
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
		if !final(r.info.Status) && s.cfg.Resume && st.Request != nil {
			if err := s.resume(r, *st.Request); err == nil {
				continue
			} else {
				s.log.Warn("cannot resume run", "run_id", r.info.ID, "error", err)
			}
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

// resume queues again a run that was not over when the previous process
// stopped, under the same id: its journaled partitions are not run again,
// and its sinks' commits are idempotent per run id.
func (s *Server) resume(r *run, req request) error {
	sp, _, pi, recipe, err := s.parse(req)
	if err != nil {
		return err
	}
	r.spec, r.pi, r.req, r.recipe = sp, pi, req, recipe
	r.logs = newRing(s.cfg.LogLines)
	r.log = slog.New(slog.NewMultiHandler(s.log.Handler(), slog.NewJSONHandler(r.logs, nil)))
	r.done = make(chan struct{})
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.info.Status, r.info.StartedAt, r.info.FinishedAt, r.info.Error, r.info.Result = StatusQueued, nil, nil, "", nil
	r.info.Tasks = []TaskProgress{}
	s.runs[r.info.ID] = r
	s.queue = append(s.queue, r)
	s.log.Warn("resuming run that was not over when the coordinator stopped", "run_id", r.info.ID)
	return nil
}
