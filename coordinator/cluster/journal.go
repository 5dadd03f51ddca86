package cluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The journal is a bbolt file under the coordinator's --state directory:
// one writer, transactions that are durable when Put returns (fsync), no
// server to run, and already our run store's database (runstore). It keeps
// the lease generation counter and every accepted attempt of the runs that
// are not over, so that a restarted coordinator resumes them.
var (
	bucketMeta     = []byte("meta")
	bucketAccepted = []byte("accepted")
	keyGeneration  = []byte("generation")
)

// Journal is the coordinator's durable record of accepted attempts.
type Journal struct {
	db  *bolt.DB
	dir string
	gen uint32
}

// Accepted is one accepted attempt as journaled: the AttemptResult JSON
// and, for a partial result, the Arrow IPC file holding its rows.
type Accepted struct {
	Token   uint64          `json:"token"`
	Result  json.RawMessage `json:"result"`
	Partial string          `json:"partial,omitempty"`
	At      time.Time       `json:"at"`
}

// OpenJournal opens (creating) the journal in dir and starts a new
// incarnation: Generation is one more than the last process's.
func OpenJournal(dir string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Join(dir, "partials"), 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "cluster.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("state directory %s is in use by another coordinator", dir)
		}
		return nil, fmt.Errorf("open journal: %w", err)
	}
	j := &Journal{db: db, dir: dir}
	err = db.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketAccepted); err != nil {
			return err
		}
		if v := m.Get(keyGeneration); len(v) == 4 {
			j.gen = binary.BigEndian.Uint32(v)
		}
		j.gen++
		return m.Put(keyGeneration, binary.BigEndian.AppendUint32(nil, j.gen))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return j, nil
}

// Generation is this incarnation's number (1 for the first).
func (j *Journal) Generation() uint32 { return j.gen }

// Close closes the journal.
func (j *Journal) Close() error { return j.db.Close() }

func acceptedKey(runID, key, split string) []byte {
	return []byte(runID + "\x00" + key + "\x00" + split)
}

// Put records the accepted attempt of a partition; it is durable when Put
// returns. Concurrent Puts share a transaction (one fsync).
func (j *Journal) Put(runID, key, split string, a Accepted) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return j.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccepted).Put(acceptedKey(runID, key, split), b)
	})
}

// Get returns the accepted attempt of a partition, if any.
func (j *Journal) Get(runID, key, split string) (Accepted, bool, error) {
	var a Accepted
	var found bool
	err := j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAccepted).Get(acceptedKey(runID, key, split))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &a)
	})
	return a, found, err
}

// Splits returns the partitions of key with an accepted attempt.
func (j *Journal) Splits(runID, key string) (map[string]bool, error) {
	out := map[string]bool{}
	prefix := []byte(runID + "\x00" + key + "\x00")
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAccepted).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			out[string(k[len(prefix):])] = true
		}
		return nil
	})
	return out, err
}

// DeleteRun forgets a run that is over, with its partial-result files.
func (j *Journal) DeleteRun(runID string) error {
	prefix := []byte(runID + "\x00")
	err := j.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAccepted).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	return errors.Join(err, os.RemoveAll(j.partialDir(runID)))
}

func (j *Journal) partialDir(runID string) string {
	h := sha256.Sum256([]byte(runID))
	return filepath.Join(j.dir, "partials", hex.EncodeToString(h[:8]))
}

// WritePartial stores a partial result's Arrow IPC stream durably and
// returns its path.
func (j *Journal) WritePartial(runID string, token uint64, data []byte) (string, error) {
	dir := j.partialDir(runID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%016x.arrows", token))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}
