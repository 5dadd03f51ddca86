package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
)

// SuccessName is the name of the manifest a commit writes last.
const SuccessName = "_SUCCESS"

// Sink writes Parquet or CSV files into a directory (or one file when the
// URI ends in .parquet or .csv). DuckDB writes each attempt into staging
// next to the target (".<name>.liminal/<run>/"), on the same file system so
// that the commit is a sequence of renames.
type Sink struct {
	name        string
	uri         string
	target      string // absolute path of the directory or file
	single      bool
	format      Format
	mode        connectors.Mode
	partitionBy []string
	compression string
	rowGroup    int64
	delim       string

	force bool // overwrite output Liminal did not write

	mu     sync.Mutex
	active map[string]*os.File // run id -> held lock on its staging
}

// testHookMove, when set, runs before each rename of a commit; an error
// simulates a crash in the middle of the commit.
var testHookMove func(i int) error

var _ connectors.NativeSink = (*Sink)(nil)

// OpenSink configures a file sink; nothing is touched until Prepare.
func OpenSink(_ context.Context, c connectors.SinkConfig) (connectors.Sink, error) {
	f, err := parseFormat(c.Format)
	if err != nil {
		return nil, err
	}
	target := localPath(c.URI, c.BaseDir)
	ext := formatOf(target)
	single := ext != "" && !strings.HasSuffix(c.URI, "/")
	if f == "" {
		f = ext
	}
	if f == "" {
		f = Parquet
	}
	if single && ext != f {
		return nil, connectors.Permanent(fmt.Errorf("sink %s: format %s does not match the file extension %s", c.URI, f, filepath.Ext(target)))
	}
	mode := c.Mode
	if mode == "" {
		mode = connectors.ModeError
	}
	s := &Sink{name: c.Name, uri: c.URI, target: target, single: single, format: f, mode: mode,
		partitionBy: c.PartitionBy, compression: strings.ToLower(c.Compression), rowGroup: c.RowGroupSize, delim: c.Options["delim"]}
	if single && len(c.PartitionBy) > 0 {
		return nil, connectors.Permanent(fmt.Errorf("sink %s: partition_by needs a directory, not a single file", c.URI))
	}
	if single && mode == connectors.ModeAppend {
		return nil, connectors.Permanent(fmt.Errorf("sink %s: mode append needs a directory, not a single file", c.URI))
	}
	switch mode {
	case connectors.ModeUpsert:
		return nil, connectors.Permanent(fmt.Errorf("sink %s: mode upsert needs a database sink with key columns; a file sink can append, overwrite or overwrite_partitions", c.URI))
	case connectors.ModeOverwritePartitions:
		if len(c.PartitionBy) == 0 {
			return nil, connectors.Permanent(fmt.Errorf("sink %s: mode overwrite_partitions needs partition_by", c.URI))
		}
	case connectors.ModeError, connectors.ModeAppend, connectors.ModeOverwrite:
	default:
		return nil, connectors.Permanent(fmt.Errorf("sink %s: unknown mode %q", c.URI, mode))
	}
	if f != Parquet && (s.compression != "" || s.rowGroup != 0) {
		return nil, connectors.Permanent(fmt.Errorf("sink %s: compression and row_group_size apply to parquet only", c.URI))
	}
	switch s.compression {
	case "", "snappy", "zstd", "gzip", "lz4", "uncompressed":
	default:
		return nil, connectors.Permanent(fmt.Errorf("sink %s: unknown compression %q (want snappy, zstd, gzip, lz4 or uncompressed)", c.URI, c.Compression))
	}
	s.force = c.Force
	if mode == connectors.ModeOverwrite || mode == connectors.ModeOverwritePartitions {
		if err := s.guardOverwrite(c.Protect); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// guardOverwrite refuses an overwrite that could delete what Liminal did
// not write: the root, the home directory, the working directory or one of
// its ancestors, a directory holding a protected path (a source of the
// run, the state directory) — whatever the user says — and a non-empty
// directory without a _SUCCESS manifest of ours unless forced.
func (s *Sink) guardOverwrite(protect []string) error {
	t := filepath.Clean(s.target)
	refuse := func(why string) error {
		return connectors.Permanent(fmt.Errorf("sink %s: refusing to overwrite %s: %s", s.uri, t, why))
	}
	if t == filepath.Dir(t) {
		return refuse("it is the root directory")
	}
	if home, err := os.UserHomeDir(); err == nil && under(filepath.Clean(home), t) {
		return refuse("it is the home directory or holds it")
	}
	if wd, err := os.Getwd(); err == nil && under(wd, t) {
		return refuse("it is the working directory or holds it")
	}
	for _, p := range protect {
		if p == "" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil && under(abs, t) {
			return refuse(fmt.Sprintf("it holds %s, which this run reads or keeps", abs))
		}
	}
	if s.force || s.single {
		return nil
	}
	return s.guardForeign()
}

// under reports whether path p is dir or lies inside it (both clean).
func under(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// guardForeign refuses to overwrite a non-empty directory that has no
// _SUCCESS manifest of ours, unless forced.
func (s *Sink) guardForeign() error {
	if s.force || s.single {
		return nil
	}
	st, err := os.Stat(s.target)
	if err != nil || !st.IsDir() {
		return nil
	}
	ents, err := os.ReadDir(s.target)
	if err != nil || len(ents) == 0 {
		return nil
	}
	if _, err := ReadSuccess(s.target); err == nil {
		return nil
	}
	// A commit of ours was interrupted (it removes _SUCCESS first): the
	// next Prepare rolls it forward, and Commit checks again after that.
	if js, _ := filepath.Glob(filepath.Join(s.stagingRoot(), "*", journalName)); len(js) > 0 {
		return nil
	}
	return connectors.Permanent(fmt.Errorf("sink %s: refusing to overwrite %s: it is not empty and Liminal did not write it (no %s); remove it, choose another directory, or pass --force-overwrite (force_overwrite: true in the spec)", s.uri, s.target, SuccessName))
}

// Describe implements connectors.Sink.
func (s *Sink) Describe() string {
	return fmt.Sprintf("%s (%s, mode %s)", s.uri, s.format, s.mode)
}

// SingleFile implements connectors.NativeSink.
func (s *Sink) SingleFile() bool { return s.single }

// JoinsParts implements connectors.PartsJoiner: a single CSV file is the
// partitions' parts one after the other, under one header; a single
// Parquet file is their row groups one after the other, copied without
// re-encoding, under one footer. Memory then stays that of one partition
// instead of the whole result (a final stage gathers every row in DuckDB:
// 884 MiB for 5M rows into CSV, 755 MiB for 10M into Parquet, RESULTS.md).
func (s *Sink) JoinsParts() bool {
	if !s.single {
		return false
	}
	if s.format == Parquet {
		return true
	}
	if s.format != CSV {
		return false
	}
	if s.delim == "" {
		return true
	}
	// One character that encoding/csv accepts as a delimiter.
	r, n := utf8.DecodeRuneInString(s.delim)
	return n == len(s.delim) && r != utf8.RuneError && r != '"' && r != '\r' && r != '\n' && r != 0xFEFF
}

// Target is the absolute output path.
func (s *Sink) Target() string { return s.target }

func (s *Sink) stagingRoot() string {
	return filepath.Join(filepath.Dir(s.target), "."+filepath.Base(s.target)+".liminal")
}

func (s *Sink) runDir(run connectors.Run) string {
	return filepath.Join(s.stagingRoot(), connectors.SafeName(run.ID))
}

// exists reports whether the target holds output: a file, or a directory
// with anything in it.
func (s *Sink) exists() (bool, error) {
	st, err := os.Stat(s.target)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !st.IsDir() {
		if !s.single {
			return false, fmt.Errorf("%s is a file, not a directory", s.target)
		}
		return true, nil
	}
	if s.single {
		return false, fmt.Errorf("%s is a directory, not a file", s.target)
	}
	ents, err := os.ReadDir(s.target)
	return len(ents) > 0, err
}

// Prepare implements connectors.Sink.
func (s *Sink) Prepare(ctx context.Context, run connectors.Run) error {
	if err := os.MkdirAll(s.stagingRoot(), 0o755); err != nil {
		return connectors.Permanent(fmt.Errorf("sink %s: cannot create staging: %w", s.uri, err))
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.recover(); err != nil {
		return err
	}
	if s.mode == connectors.ModeError {
		ex, err := s.exists()
		if err != nil {
			return connectors.Permanent(fmt.Errorf("sink %s: %w", s.uri, err))
		}
		if ex {
			return connectors.Permanent(fmt.Errorf("sink %s: output exists (mode error); choose mode overwrite or append", s.uri))
		}
	}
	s.sweep(run)
	if err := os.MkdirAll(s.runDir(run), 0o755); err != nil {
		return connectors.Permanent(fmt.Errorf("sink %s: %w", s.uri, err))
	}
	if err := s.hold(run); err != nil {
		return err
	}
	// Prove the target's directory is writable now rather than at commit.
	probe := filepath.Join(s.runDir(run), ".probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		return connectors.Permanent(fmt.Errorf("sink %s: not writable: %w", s.uri, err))
	}
	return os.Remove(probe)
}

const activeName = ".active"

// hold takes a lock on the run's staging that lives as long as the run, so
// that other runs can tell live staging from the leftovers of a crash.
func (s *Sink) hold(run connectors.Run) error {
	f, err := os.OpenFile(filepath.Join(s.runDir(run), activeName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("sink %s: %w", s.uri, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return connectors.Permanent(fmt.Errorf("sink %s: run %s is already running on this sink", s.uri, run.ID))
	}
	s.mu.Lock()
	if s.active == nil {
		s.active = map[string]*os.File{}
	}
	s.active[run.ID] = f
	s.mu.Unlock()
	return nil
}

func (s *Sink) release(run connectors.Run) {
	s.mu.Lock()
	f := s.active[run.ID]
	delete(s.active, run.ID)
	s.mu.Unlock()
	if f != nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// sweep removes the staging of runs whose process is gone (no one holds
// their lock): what a crashed or killed run left behind. Journals were
// rolled forward by recover before this.
func (s *Sink) sweep(self connectors.Run) {
	ents, err := os.ReadDir(s.stagingRoot())
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || e.Name() == connectors.SafeName(self.ID) {
			continue
		}
		dir := filepath.Join(s.stagingRoot(), e.Name())
		f, err := os.OpenFile(filepath.Join(dir, activeName), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if _, jerr := os.Stat(filepath.Join(dir, journalName)); errors.Is(jerr, fs.ErrNotExist) {
				_ = os.RemoveAll(dir)
			}
		}
		f.Close()
	}
}

// lock takes an exclusive lock on the sink's staging root so two runs never
// commit into one target at once.
func (s *Sink) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.stagingRoot(), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, connectors.Permanent(fmt.Errorf("sink %s: lock: %w", s.uri, err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("sink %s: lock: %w", s.uri, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// Stage implements connectors.NativeSink.
func (s *Sink) Stage(_ context.Context, run connectors.Run, sp partition.Split, attempt int) (connectors.NativeTarget, error) {
	dir := filepath.Join(s.runDir(run), "attempts", fmt.Sprintf("%s-a%d", connectors.SafeName(sp.ID), attempt))
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	mk := dir
	if len(s.partitionBy) > 0 {
		mk = filepath.Dir(dir) // DuckDB creates the partitioned directory itself
	}
	if err := os.MkdirAll(mk, 0o755); err != nil {
		return nil, err
	}
	t := &target{sink: s, run: run, split: sp.ID, attempt: attempt, dir: dir}
	return t, nil
}

type target struct {
	sink    *Sink
	run     connectors.Run
	split   string
	attempt int
	dir     string
}

func (t *target) ext() string { return "." + string(t.sink.format) }

// CopyTo implements connectors.NativeTarget.
func (t *target) CopyTo() string {
	s := t.sink
	var o []string
	switch s.format {
	case Parquet:
		o = append(o, "FORMAT parquet")
		if s.compression != "" {
			o = append(o, "COMPRESSION "+s.compression)
		}
		if s.rowGroup > 0 {
			o = append(o, fmt.Sprintf("ROW_GROUP_SIZE %d", s.rowGroup))
		}
	case CSV:
		o = append(o, "FORMAT csv", "HEADER true")
		if s.delim != "" {
			o = append(o, "DELIMITER "+quote(s.delim))
		}
	}
	path := filepath.Join(t.dir, "data"+t.ext())
	if len(s.partitionBy) > 0 {
		cols := make([]string, len(s.partitionBy))
		for i, c := range s.partitionBy {
			cols[i] = ident(c)
		}
		o = append(o, "PARTITION_BY ("+strings.Join(cols, ", ")+")")
		path = t.dir
	}
	return quote(path) + " (" + strings.Join(o, ", ") + ")"
}

// Close implements connectors.NativeTarget: it lists the staged files and
// gives each its final, deterministic name part-<split>-<run>[-k].<ext>.
func (t *target) Close(_ context.Context, rows int64) (connectors.Manifest, error) {
	m := connectors.Manifest{SplitID: t.split, Attempt: t.attempt, Rows: rows}
	if _, err := os.Stat(t.dir); errors.Is(err, fs.ErrNotExist) {
		return m, nil // a partitioned COPY of no rows writes nothing
	}
	perDir := map[string]int{}
	err := filepath.WalkDir(t.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(t.dir, filepath.Dir(p))
		k := perDir[rel]
		perDir[rel]++
		name := fmt.Sprintf("part-%s-%s", connectors.SafeName(t.split), connectors.SafeName(t.run.ID))
		if k > 0 {
			name += fmt.Sprintf("-%d", k)
		}
		f := connectors.StagedFile{Staged: p, Final: filepath.Join(rel, name+t.ext()), Bytes: st.Size()}
		m.Files = append(m.Files, f)
		m.Bytes += st.Size()
		return nil
	})
	if err != nil {
		return m, err
	}
	if len(m.Files) == 1 {
		m.Files[0].Rows = rows
	}
	return m, nil
}

// Abort implements connectors.NativeTarget.
func (t *target) Abort(context.Context) error { return os.RemoveAll(t.dir) }

// Abort implements connectors.Sink: the run's staging goes, the target
// stays as it was.
func (s *Sink) Abort(_ context.Context, run connectors.Run) error {
	if _, err := os.Stat(filepath.Join(s.runDir(run), journalName)); err == nil {
		// A commit had started: it must be finished, not thrown away.
		s.release(run)
		return nil
	}
	err := os.RemoveAll(s.runDir(run))
	s.release(run)
	s.removeEmptyStaging()
	return err
}

func (s *Sink) removeEmptyStaging() {
	root := s.stagingRoot()
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.Name() != ".lock" {
			return
		}
	}
	_ = os.Remove(filepath.Join(root, ".lock"))
	_ = os.Remove(root)
}

// Success is the content of the _SUCCESS manifest.
type Success struct {
	RunID       string        `json:"run_id"`
	CommittedAt time.Time     `json:"committed_at"`
	Format      Format        `json:"format"`
	Mode        string        `json:"mode"`
	Rows        int64         `json:"rows"`
	Bytes       int64         `json:"bytes"`
	Files       []SuccessFile `json:"files"`
	Runs        []string      `json:"runs"`
}

// SuccessFile is one file of a committed output.
type SuccessFile struct {
	Path  string `json:"path"`
	Rows  int64  `json:"rows,omitempty"`
	Bytes int64  `json:"bytes"`
}

// ReadSuccess reads the _SUCCESS manifest of a directory sink.
func ReadSuccess(dir string) (*Success, error) {
	b, err := os.ReadFile(filepath.Join(dir, SuccessName))
	if err != nil {
		return nil, err
	}
	var s Success
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, SuccessName), err)
	}
	return &s, nil
}

const journalName = "COMMIT.json"

type move struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// journal is written before a commit touches the target; a crashed commit
// is finished (rolled forward) by the next Prepare or Commit on the sink.
type journal struct {
	Run         string   `json:"run"`
	Target      string   `json:"target"`
	Single      bool     `json:"single"`
	Trash       string   `json:"trash"`
	Remove      []string `json:"remove"`
	RemovedDone bool     `json:"removed_done"`
	Moves       []move   `json:"moves"`
	Success     *Success `json:"success,omitempty"`
}

// Commit implements connectors.Sink.
func (s *Sink) Commit(ctx context.Context, run connectors.Run, staged []connectors.Manifest) (connectors.Committed, error) {
	out := connectors.Committed{URI: s.uri}
	unlock, err := s.lock()
	if err != nil {
		return out, err
	}
	defer unlock()
	if err := s.recover(); err != nil {
		return out, err
	}
	if err := ctx.Err(); err != nil {
		return out, err
	}
	ex, err := s.exists()
	if err != nil {
		return out, connectors.Permanent(fmt.Errorf("sink %s: %w", s.uri, err))
	}
	var prev *Success
	if !s.single && ex {
		prev, _ = ReadSuccess(s.target)
	}
	if prev != nil && (s.mode == connectors.ModeAppend || s.mode == connectors.ModeOverwritePartitions) {
		for _, r := range prev.Runs {
			if r == run.ID {
				out.AlreadyCommitted = true
				_ = s.Abort(ctx, run)
				return out, nil
			}
		}
	}
	if ex && s.mode == connectors.ModeError {
		return out, connectors.Permanent(fmt.Errorf("sink %s: output appeared during the run (mode error); nothing committed", s.uri))
	}
	if ex && (s.mode == connectors.ModeOverwrite || s.mode == connectors.ModeOverwritePartitions) {
		if err := s.guardForeign(); err != nil {
			return out, err
		}
	}
	if s.JoinsParts() {
		if staged, err = s.joinParts(run, staged); err != nil {
			return out, fmt.Errorf("sink %s: join the partitions' files: %w", s.uri, err)
		}
	}
	j := journal{Run: run.ID, Target: s.target, Single: s.single, Trash: filepath.Join(s.runDir(run), "trash")}
	for _, m := range staged {
		for _, f := range m.Files {
			to := s.target
			if !s.single {
				to = filepath.Join(s.target, f.Final)
			}
			j.Moves = append(j.Moves, move{From: f.Staged, To: to})
			out.Files = append(out.Files, to)
		}
		out.Rows += m.Rows
		out.Bytes += m.Bytes
	}
	if s.single && len(j.Moves) != 1 {
		return out, fmt.Errorf("sink %s: a single-file sink needs exactly one staged file, got %d", s.uri, len(j.Moves))
	}
	if !s.single {
		succ := &Success{RunID: run.ID, CommittedAt: time.Now().UTC(), Format: s.format, Mode: string(s.mode), Runs: []string{run.ID}}
		if ex && s.mode == connectors.ModeOverwrite {
			ents, err := os.ReadDir(s.target)
			if err != nil {
				return out, err
			}
			for _, e := range ents {
				j.Remove = append(j.Remove, e.Name())
			}
		}
		if prev != nil && s.mode == connectors.ModeAppend {
			succ.Files = append(succ.Files, prev.Files...)
			succ.Rows, succ.Bytes = prev.Rows, prev.Bytes
			succ.Runs = append(append([]string(nil), prev.Runs...), run.ID)
		}
		if s.mode == connectors.ModeOverwritePartitions {
			replaced := s.producedPartitions(staged)
			for _, d := range replaced {
				if _, err := os.Stat(filepath.Join(s.target, d)); err == nil {
					j.Remove = append(j.Remove, d)
				}
			}
			if prev != nil {
				succ.Runs = append(append([]string(nil), prev.Runs...), run.ID)
				for _, f := range prev.Files {
					if !underAny(f.Path, replaced) {
						succ.Files = append(succ.Files, f)
						succ.Rows += f.Rows
						succ.Bytes += f.Bytes
					}
				}
			}
		}
		for _, m := range staged {
			for _, f := range m.Files {
				succ.Files = append(succ.Files, SuccessFile{Path: f.Final, Rows: f.Rows, Bytes: f.Bytes})
			}
			succ.Rows += m.Rows
			succ.Bytes += m.Bytes
		}
		sort.Slice(succ.Files, func(a, b int) bool { return succ.Files[a].Path < succ.Files[b].Path })
		j.Success = succ
	}
	path := filepath.Join(s.runDir(run), journalName)
	if err := writeJSON(path, j); err != nil {
		return out, fmt.Errorf("sink %s: write commit journal: %w", s.uri, err)
	}
	if err := j.apply(path); err != nil {
		return out, fmt.Errorf("sink %s: commit (will be finished by the next run on this sink): %w", s.uri, err)
	}
	s.release(run)
	s.removeEmptyStaging()
	sort.Strings(out.Files)
	return out, nil
}

// joinParts writes the staged CSV files of several partitions, in split
// order, as one staged file: the first file whole, the others without
// their header (the same bytes, checked). One file or none is left as is.
func (s *Sink) joinParts(run connectors.Run, staged []connectors.Manifest) ([]connectors.Manifest, error) {
	var files []connectors.StagedFile
	joined := connectors.Manifest{SplitID: "joined"}
	ms := slices.Clone(staged)
	sort.SliceStable(ms, func(a, b int) bool { return ms[a].SplitID < ms[b].SplitID })
	for _, m := range ms {
		files = append(files, m.Files...)
		joined.Rows += m.Rows
	}
	if len(files) <= 1 {
		return staged, nil
	}
	dir := filepath.Join(s.runDir(run), "joined")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if s.format == Parquet {
		path := filepath.Join(dir, "data.parquet")
		parts := make([]string, len(files))
		for i, f := range files {
			parts[i] = f.Staged
		}
		rows, err := joinParquet(path, parts)
		if err != nil {
			return nil, err
		}
		if rows != joined.Rows {
			return nil, fmt.Errorf("joined Parquet file has %d rows, the parts %d", rows, joined.Rows)
		}
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		joined.Bytes = st.Size()
		joined.Files = []connectors.StagedFile{{Staged: path, Final: filepath.Base(path), Rows: rows, Bytes: st.Size()}}
		return []connectors.Manifest{joined}, nil
	}
	path := filepath.Join(dir, "data.csv")
	out, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	w := bufio.NewWriterSize(out, 1<<20)
	var header []byte
	for _, f := range files {
		in, err := os.Open(f.Staged)
		if err != nil {
			return nil, err
		}
		r := bufio.NewReaderSize(in, 1<<20)
		if header == nil {
			// The first file with a header is copied whole.
			if header, err = csvHeader(f.Staged, s.delim); err != nil {
				in.Close()
				return nil, err
			}
		} else {
			got := make([]byte, len(header))
			n, err := io.ReadFull(r, got)
			if err != nil && !(errors.Is(err, io.EOF) && n == 0) {
				in.Close()
				return nil, fmt.Errorf("%s: %w", f.Staged, err)
			}
			if n > 0 && !bytes.Equal(got, header) {
				in.Close()
				return nil, fmt.Errorf("%s: its header differs from the first part's", f.Staged)
			}
		}
		_, err = io.Copy(w, r)
		in.Close()
		if err != nil {
			return nil, err
		}
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if err := out.Sync(); err != nil {
		return nil, err
	}
	st, err := out.Stat()
	if err != nil {
		return nil, err
	}
	joined.Bytes = st.Size()
	joined.Files = []connectors.StagedFile{{Staged: path, Final: filepath.Base(path), Rows: joined.Rows, Bytes: st.Size()}}
	return []connectors.Manifest{joined}, nil
}

// csvHeader returns the bytes of the first record of a CSV file (its
// header, quoted fields and embedded newlines included), with the line end.
func csvHeader(path, delim string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReader(f))
	if delim != "" {
		cr.Comma, _ = utf8.DecodeRuneInString(delim)
	}
	cr.FieldsPerRecord, cr.LazyQuotes = -1, true
	if _, err := cr.Read(); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	n := cr.InputOffset()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	h := make([]byte, n)
	if _, err := io.ReadFull(f, h); err != nil {
		return nil, err
	}
	return h, nil
}

// producedPartitions lists the partition directories (relative to the
// target, "dt=2024-01-01/region=IL") that the staged files go to.
func (s *Sink) producedPartitions(staged []connectors.Manifest) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range staged {
		for _, f := range m.Files {
			segs := strings.Split(filepath.ToSlash(filepath.Dir(f.Final)), "/")
			if len(segs) > len(s.partitionBy) {
				segs = segs[:len(s.partitionBy)]
			}
			d := filepath.FromSlash(strings.Join(segs, "/"))
			if d == "." || d == "" || seen[d] {
				continue
			}
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// underAny reports whether relative path p lies in one of dirs.
func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(filepath.Clean(p), filepath.Clean(d)+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// recover rolls forward every commit journal left by a crashed commit.
func (s *Sink) recover() error {
	paths, _ := filepath.Glob(filepath.Join(s.stagingRoot(), "*", journalName))
	for _, p := range paths {
		var j journal
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := decodeJournal(b, &j); err != nil {
			return fmt.Errorf("sink %s: corrupt commit journal %s: %w", s.uri, p, err)
		}
		if err := s.confined(&j, filepath.Dir(p)); err != nil {
			return connectors.Permanent(fmt.Errorf("sink %s: refusing commit journal %s: %w; nothing was changed (remove the file if it is not Liminal's)", s.uri, p, err))
		}
		if err := j.apply(p); err != nil {
			return fmt.Errorf("sink %s: finish interrupted commit of run %s: %w", s.uri, j.Run, err)
		}
	}
	return nil
}

// confined checks that a journal only touches this sink: its target is the
// sink's, what it removes lies inside the target, what it moves comes from
// its own staging directory (runDir) and goes into the target, its trash is
// in its staging directory. A journal planted in the staging directory
// could otherwise make the next run delete or move any file.
func (s *Sink) confined(j *journal, runDir string) error {
	inside := func(p, dir string) bool { // strictly inside
		return filepath.IsAbs(p) && under(filepath.Clean(p), dir) && filepath.Clean(p) != filepath.Clean(dir)
	}
	target := filepath.Clean(s.target)
	if filepath.Clean(j.Target) != target {
		return fmt.Errorf("its target %s is not the sink's %s", j.Target, target)
	}
	if j.Single != s.single {
		return errors.New("it is for another kind of sink")
	}
	if !inside(j.Trash, runDir) {
		return fmt.Errorf("its trash %s is outside its staging directory", j.Trash)
	}
	for _, r := range j.Remove {
		if filepath.IsAbs(r) || !inside(filepath.Join(target, r), target) {
			return fmt.Errorf("it removes %q, outside the target", r)
		}
	}
	for _, m := range j.Moves {
		if !inside(m.From, runDir) {
			return fmt.Errorf("it moves %s, which is not in its staging directory", m.From)
		}
		if s.single && filepath.Clean(m.To) != target || !s.single && !inside(m.To, target) {
			return fmt.Errorf("it moves a file to %s, outside the target", m.To)
		}
	}
	return nil
}

// decodeJournal reads a commit journal; one without a target or with a
// move that lacks an end is corrupt.
func decodeJournal(b []byte, j *journal) error {
	if err := json.Unmarshal(b, j); err != nil {
		return err
	}
	if j.Target == "" {
		return errors.New("no target")
	}
	for _, m := range j.Moves {
		if m.From == "" || m.To == "" {
			return errors.New("a move without source or destination")
		}
	}
	return nil
}

// apply performs the journal's steps; every step is idempotent, so a crash
// at any point is finished by running apply again.
func (j *journal) apply(path string) error {
	if !j.Single {
		if err := os.Remove(filepath.Join(j.Target, SuccessName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if !j.RemovedDone {
			if err := os.MkdirAll(j.Trash, 0o755); err != nil {
				return err
			}
			for _, r := range j.Remove {
				// A partition directory (overwrite_partitions) may be nested.
				if err := os.MkdirAll(filepath.Dir(filepath.Join(j.Trash, r)), 0o755); err != nil {
					return err
				}
				err := os.Rename(filepath.Join(j.Target, r), filepath.Join(j.Trash, r))
				if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			j.RemovedDone = true
			if err := writeJSON(path, j); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(j.Target, 0o755); err != nil {
			return err
		}
	}
	for i, m := range j.Moves {
		if testHookMove != nil {
			if err := testHookMove(i); err != nil {
				return err
			}
		}
		if _, err := os.Stat(m.From); errors.Is(err, fs.ErrNotExist) {
			continue // moved by an earlier, interrupted apply
		}
		if err := os.MkdirAll(filepath.Dir(m.To), 0o755); err != nil {
			return err
		}
		if err := os.Rename(m.From, m.To); err != nil {
			return err
		}
	}
	if j.Success != nil {
		if err := writeJSON(filepath.Join(j.Target, SuccessName), j.Success); err != nil {
			return err
		}
	}
	syncDir(j.Target)
	return os.RemoveAll(filepath.Dir(path))
}

// writeJSON writes v durably: temp file, fsync, rename.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
