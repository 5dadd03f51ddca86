package runstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Status of a recorded run.
type Status string

// Statuses. Queued and Running are "active": a record left in one of them
// by a process that died is interrupted (see Store.Active).
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
	StatusSkipped   Status = "skipped"
)

// Active reports whether a run in this status has not finished.
func (s Status) Active() bool { return s == StatusQueued || s == StatusRunning }

// Trigger is why a run started.
type Trigger string

// Triggers.
const (
	TriggerSchedule Trigger = "schedule"
	TriggerManual   Trigger = "manual"
	TriggerCatchup  Trigger = "catchup"
)

// Record is one run of a pipeline. Pipeline, StartedAt and RunID are its
// key: putting a record with the same three replaces it.
type Record struct {
	RunID    string  `json:"run_id"`
	Pipeline string  `json:"pipeline"`
	Spec     string  `json:"spec,omitempty"`
	Status   Status  `json:"status"`
	Trigger  Trigger `json:"trigger"`
	// ScheduledAt is the schedule slot the run belongs to; zero for a
	// manual run.
	ScheduledAt time.Time `json:"scheduled_at,omitzero"`
	StartedAt   time.Time `json:"started_at"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	RowsIn      int64     `json:"rows_in"`
	RowsOut     int64     `json:"rows_out"`
	Error       string    `json:"error,omitempty"`
	ExitCode    int       `json:"exit_code"`
	// Result is the run's coordinator.RunResult as JSON, when it ran.
	Result json.RawMessage `json:"result,omitempty"`
}

// Duration is how long the run took, or has been running until now.
func (r Record) Duration(now time.Time) time.Duration {
	if r.FinishedAt.IsZero() {
		if r.Status.Active() {
			return now.Sub(r.StartedAt)
		}
		return 0
	}
	return r.FinishedAt.Sub(r.StartedAt)
}

// FileName is the bbolt file in the state directory.
const FileName = "runs.db"

// lockName is the file a scheduler holds locked while it uses the
// directory.
const lockName = "scheduler.lock"

// ErrLocked is returned by Open when another process holds the state
// directory.
var ErrLocked = errors.New("state directory locked")

var (
	bucketRuns   = []byte("runs")   // runs / <pipeline> / <start><run id> -> Record JSON
	bucketActive = []byte("active") // <pipeline>\x00<start><run id> -> empty
)

// Store is the run history of one state directory. It is safe for
// concurrent use. The bbolt file is opened for each transaction and closed
// after it, so that `liminal runs` can read the history while a scheduler
// writes it; bbolt's own file lock serializes the transactions of
// processes, a mutex those of goroutines.
type Store struct {
	dir     string
	path    string
	timeout time.Duration
	mu      sync.Mutex
	unlock  func()
	closed  bool
}

// Options tune a Store.
type Options struct {
	// LockTimeout bounds the wait for the directory lock and for bbolt's
	// file lock (default 2s).
	LockTimeout time.Duration
}

// Open opens (creating when needed) the run history in dir for a
// scheduler: one process at a time may hold a directory this way; another
// gets an error wrapping ErrLocked that names the directory.
func Open(dir string) (*Store, error) { return OpenWith(dir, Options{}) }

// OpenWith is Open with options.
func OpenWith(dir string, o Options) (*Store, error) {
	s, err := open(dir, o)
	if err != nil {
		return nil, err
	}
	unlock, err := lockDir(filepath.Join(dir, lockName), s.timeout)
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("another liminal scheduler uses %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	s.unlock = unlock
	return s, nil
}

// OpenShared opens the run history in dir without taking the scheduler's
// lock: for reading it (`liminal runs`) or adding records next to a
// running scheduler.
func OpenShared(dir string) (*Store, error) { return open(dir, Options{}) }

func open(dir string, o Options) (*Store, error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 2 * time.Second
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	s := &Store{dir: dir, path: filepath.Join(dir, FileName), timeout: o.LockTimeout}
	// Create the buckets now, so that a broken file fails here.
	if err := s.update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketRuns); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bucketActive)
		return err
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// Close releases the directory lock. Idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && s.unlock != nil {
		s.unlock()
	}
	s.closed = true
	return nil
}

var errClosed = errors.New("run store is closed")

func (s *Store) db(readOnly bool) (*bolt.DB, error) {
	if s.closed {
		return nil, errClosed
	}
	db, err := bolt.Open(s.path, 0o644, &bolt.Options{Timeout: s.timeout, ReadOnly: readOnly})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: busy for more than %s: %w", s.path, s.timeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.path, err)
	}
	return db, nil
}

func (s *Store) update(fn func(*bolt.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	db, err := s.db(false)
	if err != nil {
		return err
	}
	if err := db.Update(fn); err != nil {
		db.Close()
		return fmt.Errorf("%s: %w", s.path, err)
	}
	return db.Close()
}

func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	db, err := s.db(true)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.View(fn); err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	return nil
}

// key orders a pipeline's records by start time, then run id.
func key(r Record) []byte {
	k := make([]byte, 8, 8+len(r.RunID))
	binary.BigEndian.PutUint64(k, uint64(r.StartedAt.UnixNano()))
	return append(k, r.RunID...)
}

func activeKey(r Record) []byte {
	return append(append([]byte(r.Pipeline), 0), key(r)...)
}

// Put writes r, replacing the record with the same pipeline, start time
// and run id.
func (s *Store) Put(r Record) error {
	if r.Pipeline == "" || r.RunID == "" || r.StartedAt.IsZero() {
		return fmt.Errorf("run record needs a pipeline, a run id and a start time")
	}
	r.StartedAt = r.StartedAt.UTC()
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		pb, err := tx.Bucket(bucketRuns).CreateBucketIfNotExists([]byte(r.Pipeline))
		if err != nil {
			return err
		}
		if err := pb.Put(key(r), b); err != nil {
			return err
		}
		if r.Status.Active() {
			return tx.Bucket(bucketActive).Put(activeKey(r), nil)
		}
		return tx.Bucket(bucketActive).Delete(activeKey(r))
	})
}

// List returns up to limit records (0: all) of pipeline, or of every
// pipeline when pipeline is "", newest first.
func (s *Store) List(pipeline string, limit int) ([]Record, error) {
	var out []Record
	err := s.view(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		if runs == nil {
			return nil
		}
		each := func(name []byte, pb *bolt.Bucket) error {
			c := pb.Cursor()
			n := 0
			for k, v := c.Last(); k != nil && (limit <= 0 || n < limit); k, v = c.Prev() {
				var r Record
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("record %s/%x: %w", name, k, err)
				}
				out = append(out, r)
				n++
			}
			return nil
		}
		if pipeline != "" {
			if pb := runs.Bucket([]byte(pipeline)); pb != nil {
				return each([]byte(pipeline), pb)
			}
			return nil
		}
		return runs.ForEachBucket(func(name []byte) error { return each(name, runs.Bucket(name)) })
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.After(out[j].StartedAt)
		}
		if out[i].Pipeline != out[j].Pipeline {
			return out[i].Pipeline < out[j].Pipeline
		}
		return out[i].RunID > out[j].RunID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Last returns the newest record of pipeline; ok is false when it has none.
func (s *Store) Last(pipeline string) (r Record, ok bool, err error) {
	rs, err := s.List(pipeline, 1)
	if err != nil || len(rs) == 0 {
		return Record{}, false, err
	}
	return rs[0], true, nil
}

// LastScheduled returns the latest schedule slot recorded for pipeline,
// whatever the run's status; ok is false when no scheduled run was ever
// recorded. Slots are mostly recorded in order, but a catch-up run can start
// after a newer slot was recorded skipped, so it looks at the newest
// lastScan records and takes the latest slot among them.
func (s *Store) LastScheduled(pipeline string) (slot time.Time, ok bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		pb := tx.Bucket(bucketRuns).Bucket([]byte(pipeline))
		if pb == nil {
			return nil
		}
		c := pb.Cursor()
		n := 0
		for k, v := c.Last(); k != nil && n < lastScan; k, v = c.Prev() {
			n++
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %s/%x: %w", pipeline, k, err)
			}
			if !r.ScheduledAt.IsZero() && (!ok || r.ScheduledAt.After(slot)) {
				slot, ok = r.ScheduledAt, true
			}
		}
		return nil
	})
	return slot, ok, err
}

// lastScan bounds the records LastScheduled reads: more than a scheduler
// records out of slot order (its catch-up bound plus the ticks meanwhile).
const lastScan = 1000

// Active returns the records still queued or running, oldest first: after
// a crash, the runs the dead process left unfinished.
func (s *Store) Active() ([]Record, error) {
	var out []Record
	err := s.view(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		return tx.Bucket(bucketActive).ForEach(func(k, _ []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				return nil
			}
			pb := runs.Bucket(k[:i])
			if pb == nil {
				return nil
			}
			v := pb.Get(k[i+1:])
			if v == nil {
				return nil
			}
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out, err
}
