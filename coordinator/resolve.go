package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
	"github.com/liminal-data/liminal/spec"
)

// Overrides are command-line settings that win over the spec.
type Overrides struct {
	TargetRows    int64
	MaxPartitions int
	// RunID and WorkDir place the intermediate results of tasks that have
	// no sink but are read by the tasks depending on them:
	// WorkDir/liminal-<run id>/<task>/ (default: the OS temp directory).
	RunID   string
	WorkDir string
	// ForceOverwrite lets overwrite sinks replace directories Liminal did
	// not write (--force-overwrite); Protect adds paths no overwrite may
	// remove (the state directory) to the spec's local sources.
	ForceOverwrite bool
	Protect        []string
}

// LazySource stands for the result of an earlier task of the same run: it
// can be opened only once that task has committed. The coordinator opens
// it right before planning the task that reads it.
type LazySource struct {
	// Task is the task whose result this is.
	Task string
	Open func(ctx context.Context) (connectors.Source, error)
}

func (l *LazySource) Schema(context.Context) (*arrow.Schema, error) { return nil, l.notYet() }
func (l *LazySource) Splits(context.Context, partition.Options) ([]partition.Split, error) {
	return nil, l.notYet()
}
func (l *LazySource) Describe() string { return "the result of task " + l.Task }
func (l *LazySource) notYet() error {
	return fmt.Errorf("the result of task %s exists only once it has run", l.Task)
}

// NewRunID returns a sortable, unique run id: UTC time plus randomness.
func NewRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// Resolve opens the sources and sinks of a pipeline's tasks. Every problem
// is reported with the spec's file:line and field path, all at once, as
// spec.Errors.
func Resolve(ctx context.Context, s *spec.Spec, p *spec.Pipeline, pi int, ov Overrides) ([]*Task, error) {
	var errs spec.Errors // problems in the spec itself: exit code 2
	var data []error     // inputs or outputs that cannot be opened: exit code 1
	sources := map[string]connectors.Source{}
	sourceErr := map[string]bool{}
	openSpecSource := func(name string) connectors.Source {
		if src, ok := sources[name]; ok || sourceErr[name] {
			return src
		}
		cfg := s.Sources[name]
		src, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: name, URI: cfg.URI, Format: cfg.Format,
			Options: cfg.Options, BaseDir: s.Dir, Secret: secret(s, cfg.SecretEnv, cfg.SecretFile)})
		if err != nil {
			data = append(data, errors.New(s.Errorf("sources."+name+".uri", "%v", err).Error()))
			sourceErr[name] = true
			return nil
		}
		sources[name] = src
		return src
	}
	var tasks []*Task
	chained := map[string]bool{}
	needed := map[string]bool{} // read by a task depending on it
	byName := map[string]int{}
	for ti, st := range p.Tasks {
		byName[st.Task] = ti
		if st.Type == "batch_inference" {
			chained[st.Input] = true
		}
		for _, d := range st.DependsOn {
			needed[d] = true
		}
	}
	runID := ov.RunID
	if runID == "" {
		runID = "plan"
	}
	workDir := ov.WorkDir
	if workDir == "" {
		workDir = os.TempDir()
	}
	// outputs are where each task's committed result can be read back.
	type output struct{ uri, format string }
	outputs := map[string]output{}
	intermediate := map[string]string{}
	for _, st := range p.Tasks {
		switch {
		case st.Sink != "":
			sk := s.Sinks[st.Sink]
			uri := sk.URI
			if connectors.Scheme(uri) == "file" && !filepath.IsAbs(uri) {
				uri = filepath.Join(s.Dir, uri)
			}
			outputs[st.Task] = output{uri, sk.Format}
		case needed[st.Task]:
			dir := filepath.Join(workDir, "liminal-"+connectors.SafeName(runID), connectors.SafeName(st.Task))
			intermediate[st.Task] = dir
			outputs[st.Task] = output{dir + string(filepath.Separator), "parquet"}
		}
	}
	openSource := func(name string) connectors.Source {
		if out, ok := outputs[name]; ok && byName[name] >= 0 {
			if _, isSource := s.Sources[name]; !isSource {
				return &LazySource{Task: name, Open: func(ctx context.Context) (connectors.Source, error) {
					return connectors.OpenSource(ctx, connectors.SourceConfig{Name: name, URI: out.uri, Format: out.format, BaseDir: s.Dir})
				}}
			}
		}
		return openSpecSource(name)
	}
	for ti, st := range p.Tasks {
		path := fmt.Sprintf("pipelines[%d].tasks[%d]", pi, ti)
		var t *Task
		switch st.Type {
		case "sql":
			if st.Sink == "" && chained[st.Task] && !needed[st.Task] {
				continue // runs as part of the batch_inference task that scores it
			}
			var err error
			if t, err = sqlTask(s, path, st); err != nil {
				errs = append(errs, s.Errorf(path+".sql_file", "%v", err))
				continue
			}
		case "batch_inference":
			t = &Task{Name: st.Task, Sources: map[string]connectors.Source{}, Score: &Score{Dir: s.Dir, Origin: origin(s.Errorf(path+".model", ""))}}
			if st.Model != nil {
				t.Score.Model = *st.Model
			}
			if st.Output != nil {
				t.Score.Output = *st.Output
			}
			ui, isTask := byName[st.Input]
			if isTask && ui < ti && p.Tasks[ui].Type == "sql" {
				up, err := sqlTask(s, fmt.Sprintf("pipelines[%d].tasks[%d]", pi, ui), p.Tasks[ui])
				if err != nil {
					errs = append(errs, s.Errorf(fmt.Sprintf("pipelines[%d].tasks[%d].sql_file", pi, ui), "%v", err))
					continue
				}
				t.Query, t.Driving, t.Origin = up.Query, up.Driving, up.Origin
				if st.Partition == (spec.Partition{}) {
					st.Partition = p.Tasks[ui].Partition
				}
				st.Sources = p.Tasks[ui].Sources
				if len(st.Sources) == 0 {
					st.Sources = sortedSourceNames(s)
				}
			} else if _, ok := s.Sources[st.Input]; ok {
				t.Query = "SELECT * FROM " + quoteIdent(st.Input)
				st.Sources = []string{st.Input}
				t.Origin = origin(s.Errorf(path+".input", ""))
			} else {
				errs = append(errs, s.Errorf(path+".input", "unknown input %q", st.Input))
				continue
			}
			if st.Partition.Source != "" {
				t.Driving = st.Partition.Source
			}
		case "command", "spark":
			prog := &Program{Kind: st.Type, Dir: s.Dir}
			for _, k := range sortedKeys(st.Env) {
				prog.Env = append(prog.Env, k+"="+st.Env[k])
			}
			if st.Type == "command" {
				prog.Argv = append([]string(nil), st.Command...)
				if len(prog.Argv) > 0 && strings.Contains(prog.Argv[0], "/") && !filepath.IsAbs(prog.Argv[0]) {
					prog.Argv[0] = filepath.Join(s.Dir, prog.Argv[0])
				}
			} else {
				argv, err := SparkArgv(st.Spark, s.Dir)
				if err != nil {
					data = append(data, errors.New(s.Errorf(path+".spark", "%v", err).Error()))
					continue
				}
				prog.Argv = argv
			}
			t := &Task{Name: st.Task, Program: prog, DependsOn: st.DependsOn, Origin: origin(s.Errorf(path, ""))}
			if st.Retries != nil {
				t.MaxAttempts = *st.Retries + 1
			}
			t.RetryDelay, _ = time.ParseDuration(st.RetryDelay)
			t.Timeout, _ = time.ParseDuration(st.Timeout)
			tasks = append(tasks, t)
			continue
		default:
			errs = append(errs, s.Errorf(path+".type", "task type %q is not supported by this build", st.Type))
			continue
		}
		names := st.Sources
		if len(names) == 0 {
			names = sortedSourceNames(s)
		}
		for _, n := range names {
			if src := openSource(n); src != nil {
				t.Sources[n] = src
			}
		}
		by, err := partition.ParseStrategy(st.Partition.By)
		if err != nil {
			errs = append(errs, s.Errorf(path+".partition.by", "%v", err))
		}
		t.Partition = partition.Options{By: by, TargetRows: st.Partition.TargetRows, TargetBytes: st.Partition.TargetBytes,
			MaxPartitions: st.Partition.MaxPartitions}
		if ov.TargetRows > 0 {
			t.Partition.TargetRows = ov.TargetRows
		}
		if ov.MaxPartitions > 0 {
			t.Partition.MaxPartitions = ov.MaxPartitions
		}
		t.DependsOn = st.DependsOn
		t.Checks = st.Checks
		for _, c := range st.Checks {
			if _, ok := s.Sources[c.To]; ok && t.Sources[c.To] == nil {
				if src := openSpecSource(c.To); src != nil {
					if t.CheckSources == nil {
						t.CheckSources = map[string]connectors.Source{}
					}
					t.CheckSources[c.To] = src
				}
			}
		}
		if st.Retries != nil {
			t.MaxAttempts = *st.Retries + 1
		}
		t.RetryDelay, _ = time.ParseDuration(st.RetryDelay) // validated
		t.Timeout, _ = time.ParseDuration(st.Timeout)
		if dir, ok := intermediate[st.Task]; ok {
			// No sink of its own: the result goes to an intermediate
			// Parquet directory that the dependents read, removed when
			// the run ends.
			sink, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: st.Task, URI: dir + string(filepath.Separator),
				Format: "parquet", Mode: connectors.ModeOverwrite})
			if err != nil {
				data = append(data, fmt.Errorf("task %s: intermediate output %s: %w", st.Task, dir, err))
				continue
			}
			t.Sink = sink
			t.Cleanup = append(t.Cleanup, filepath.Dir(dir))
			tasks = append(tasks, t)
			continue
		}
		sk, ok := s.Sinks[st.Sink]
		if !ok {
			errs = append(errs, s.Errorf(path+".sink", "unknown sink %q", st.Sink))
			continue
		}
		mode, err := connectors.ParseMode(sk.Mode)
		if err != nil {
			errs = append(errs, s.Errorf("sinks."+st.Sink+".mode", "%v", err))
			continue
		}
		protect := append([]string(nil), ov.Protect...)
		for _, n := range sortedSourceNames(s) {
			protect = append(protect, connectors.LocalPath(s.Sources[n].URI, s.Dir))
		}
		sink, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: st.Sink, URI: sk.URI, Format: sk.Format, Mode: mode,
			PartitionBy: sk.PartitionBy, Compression: sk.Compression, RowGroupSize: sk.RowGroupSize, Options: sk.Options,
			BaseDir: s.Dir, Secret: secret(s, sk.SecretEnv, sk.SecretFile), KeyColumns: sk.KeyColumns,
			Protect: protect, Force: ov.ForceOverwrite || sk.ForceOverwrite})
		if err != nil {
			data = append(data, errors.New(s.Errorf("sinks."+st.Sink+".uri", "%v", err).Error()))
			continue
		}
		t.Sink = sink
		tasks = append(tasks, t)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(data) > 0 {
		return nil, errors.Join(data...)
	}
	return tasks, nil
}

// sqlTask resolves the query of an sql task.
func sqlTask(s *spec.Spec, path string, st spec.Task) (*Task, error) {
	q, err := st.Query(s)
	if err != nil {
		return nil, err
	}
	t := &Task{Name: st.Task, Query: q, Sources: map[string]connectors.Source{}, Driving: st.Partition.Source}
	sqlPath := path + ".sql"
	if st.SQLFile != "" {
		sqlPath = path + ".sql_file"
	}
	t.Origin = origin(s.Errorf(sqlPath, ""))
	return t, nil
}

func sortedSourceNames(s *spec.Spec) []string {
	names := make([]string, 0, len(s.Sources))
	for n := range s.Sources {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// quoteIdent quotes a SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// secret reads a password or token from the environment variable env, or
// else from file (relative to the spec), trimming one trailing newline.
func secret(s *spec.Spec, env, file string) string {
	if env != "" {
		return os.Getenv(env)
	}
	if file == "" {
		return ""
	}
	p := file
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.Dir, p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
}

// IsInvalid reports whether err is a problem with the spec or the SQL (exit
// code 2) rather than with data or systems (exit code 1).
func IsInvalid(err error) bool {
	var se spec.Errors
	var e1 *spec.Error
	return errors.As(err, &se) || errors.As(err, &e1) || errors.Is(err, ErrInvalid)
}

// ErrInvalid marks errors in what the user wrote (SQL that does not parse
// or bind), found before any partition ran.
var ErrInvalid = errors.New("invalid")

type invalidError struct{ err error }

func (e *invalidError) Error() string   { return e.err.Error() }
func (e *invalidError) Unwrap() []error { return []error{e.err, ErrInvalid} }

// Invalid wraps err so that IsInvalid holds.
func Invalid(err error) error { return &invalidError{err: err} }

// origin renders a spec position as "file:line: path".
func origin(e *spec.Error) string {
	e.Msg = ""
	return strings.TrimSuffix(e.Error(), ": ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Resolve rebuilds the run's tasks from the recipe, as the submitting
// process resolved them: the spec is interpolated with the recipe's Env
// first, then this process's environment.
func (r *Recipe) Resolve(ctx context.Context, runID string) ([]*Task, error) {
	lookup := func(name string) (string, bool) {
		if v, ok := r.Env[name]; ok {
			return v, true
		}
		return os.LookupEnv(name)
	}
	s, err := spec.ParseWithEnv(r.Spec, r.File, lookup)
	if err != nil {
		return nil, Invalid(err)
	}
	if r.Pipeline < 0 || r.Pipeline >= len(s.Pipelines) {
		return nil, Invalid(fmt.Errorf("recipe: pipeline %d of %d", r.Pipeline, len(s.Pipelines)))
	}
	tasks, err := Resolve(ctx, s, &s.Pipelines[r.Pipeline], r.Pipeline,
		Overrides{TargetRows: r.TargetRows, MaxPartitions: r.MaxPartitions, RunID: runID, WorkDir: r.WorkDir})
	for _, t := range tasks {
		t.Recipe = r
	}
	return tasks, err
}

// RecordingLookup returns a lookup over the process environment that
// records the variables a spec refers to, for Recipe.Env.
func RecordingLookup(env map[string]string) spec.LookupFunc {
	return func(name string) (string, bool) {
		v, ok := os.LookupEnv(name)
		if ok {
			env[name] = v
		}
		return v, ok
	}
}
