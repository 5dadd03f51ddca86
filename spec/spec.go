package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Spec is a parsed and validated Liminal spec file: named data sources and
// sinks, the pipelines whose tasks move data between them, and long-running
// services. Build it with Load or Parse; a Spec built by hand has no
// positions, so its Errorf and Line report no line numbers.
type Spec struct {
	// Name identifies the spec (a project or deployment name).
	Name string `yaml:"name" json:"name"`
	// Sources are the inputs, keyed by the SQL table name tasks read them as.
	Sources map[string]Source `yaml:"sources,omitempty" json:"sources,omitempty"`
	// Sinks are the outputs, keyed by the name tasks write them with.
	Sinks map[string]Sink `yaml:"sinks,omitempty" json:"sinks,omitempty"`
	// Pipelines are ordered lists of tasks, run on demand or on a schedule.
	Pipelines []Pipeline `yaml:"pipelines,omitempty" json:"pipelines,omitempty"`
	// Services are long-running endpoints declared next to the pipelines.
	Services []Service `yaml:"services,omitempty" json:"services,omitempty"`

	// File is the path of the spec file as given to Load, or the name given
	// to Parse ("" when Parse had no name).
	File string `yaml:"-" json:"-"`
	// Dir is the directory of the spec file; relative paths (sql_file, local
	// URIs) resolve against it. It is "" when Parse had no file name, which
	// makes relative paths resolve against the working directory.
	Dir string `yaml:"-" json:"-"`

	// pos maps field paths to the place in the file where they were
	// defined; filled by the decoder, read by Errorf and Line.
	pos map[string]position
}

// Source is a named input: a local path, directory or glob, or a connector
// URL.
type Source struct {
	// URI is required: a local path/dir/glob or a connector URL. Relative
	// local paths resolve against Spec.Dir.
	URI string `yaml:"uri"`
	// Format is "", "parquet" or "csv"; "" lets the connector infer it.
	Format string `yaml:"format,omitempty"`
	// Options are connector options (for example csv delim or header).
	Options map[string]string `yaml:"options,omitempty"`
	// SecretEnv names the environment variable that holds a password or
	// token; the secret itself never appears in the spec.
	SecretEnv string `yaml:"secret_env,omitempty"`
	// SecretFile names a file (relative to the spec) holding the password
	// or token, e.g. a mounted Kubernetes secret.
	SecretFile string `yaml:"secret_file,omitempty"`
}

// Sink is a named output.
type Sink struct {
	// URI is required: a local path or a connector URL.
	URI string `yaml:"uri"`
	// Format is "", "parquet" or "csv".
	Format string `yaml:"format,omitempty"`
	// Mode is "append", "overwrite" or "error"; "" means "error" (refuse to
	// write over existing output).
	Mode string `yaml:"mode,omitempty"`
	// PartitionBy lists the columns of hive-style output partitioning.
	PartitionBy []string `yaml:"partition_by,omitempty"`
	// Compression is the parquet codec: snappy, zstd, gzip, lz4 or
	// uncompressed ("" picks the writer's default). Parquet only.
	Compression string `yaml:"compression,omitempty"`
	// RowGroupSize is the parquet row group size in rows; 0 picks the
	// writer's default. Parquet only.
	RowGroupSize int64 `yaml:"row_group_size,omitempty"`
	// Options are connector options.
	Options map[string]string `yaml:"options,omitempty"`
	// SecretEnv names the environment variable that holds a password or
	// token.
	SecretEnv string `yaml:"secret_env,omitempty"`
	// SecretFile names a file (relative to the spec) holding the password
	// or token.
	SecretFile string `yaml:"secret_file,omitempty"`
	// KeyColumns are the key of an upsert sink (a database table).
	KeyColumns []string `yaml:"key_columns,omitempty"`
	// ForceOverwrite lets mode overwrite replace a non-empty directory that
	// Liminal did not write (one without its _SUCCESS manifest).
	ForceOverwrite bool `yaml:"force_overwrite,omitempty"`
}

// Pipeline is a named, ordered list of tasks.
type Pipeline struct {
	// Pipeline is the name; required and unique within the spec.
	Pipeline string `yaml:"pipeline"`
	// Schedule is a cron expression (five fields, or a macro such as
	// @daily); "" means the pipeline runs only on demand.
	Schedule string `yaml:"schedule,omitempty"`
	// Tasks run in order; at least one is required.
	Tasks []Task `yaml:"tasks"`
	// Timezone is the IANA time zone the schedule is read in (default UTC).
	Timezone string `yaml:"timezone,omitempty"`
	// Catchup runs the schedule's missed runs (while the scheduler was
	// down) instead of skipping them.
	Catchup bool `yaml:"catchup,omitempty"`
	// MaxActiveRuns bounds the runs of the pipeline at once (default 1).
	MaxActiveRuns int `yaml:"max_active_runs,omitempty"`
	// SLA is the longest a run may take ("45m") before an sla_miss alert.
	SLA string `yaml:"sla,omitempty"`
	// Alerts are sent on run events.
	Alerts []Alert `yaml:"alerts,omitempty"`
}

// Alert sends a notification on some run events to one channel: exactly
// one of Webhook, Slack and Email is set.
type Alert struct {
	// Name identifies the alert in logs.
	Name string `yaml:"name,omitempty"`
	// On lists the events: failure (default), success, sla_miss,
	// check_failure.
	On []string `yaml:"on,omitempty"`
	// Webhook posts the event as JSON to a URL.
	Webhook *Webhook `yaml:"webhook,omitempty"`
	// Slack posts a message to a Slack-compatible incoming webhook.
	Slack *Webhook `yaml:"slack,omitempty"`
	// Email sends the event by SMTP.
	Email *Email `yaml:"email,omitempty"`
}

// Webhook is an HTTP endpoint for alerts.
type Webhook struct {
	// URL receives a POST.
	URL string `yaml:"url"`
	// Headers are added to the request (e.g. Authorization from ${VAR}).
	Headers map[string]string `yaml:"headers,omitempty"`
}

// Email is an SMTP delivery for alerts.
type Email struct {
	// SMTP is the server, host:port.
	SMTP string `yaml:"smtp"`
	// From is the sender address.
	From string `yaml:"from"`
	// To are the recipients.
	To []string `yaml:"to"`
	// Username authenticates with the server (PLAIN), with the password
	// from PasswordEnv.
	Username    string `yaml:"username,omitempty"`
	PasswordEnv string `yaml:"password_env,omitempty"`
	// TLS is starttls (default when the server offers it) or none.
	TLS string `yaml:"tls,omitempty"`
}

// Task is one step of a pipeline: "sql" (a query over the task's sources
// whose result is written to its sink) or "batch_inference" (a model that
// scores the rows of its input, a source or an earlier sql task).
type Task struct {
	// Task is the name; required and unique within the pipeline.
	Task string `yaml:"task"`
	// Type is the kind of task: "sql" or "batch_inference".
	Type string `yaml:"type"`
	// SQL is the query text. Exactly one of SQL and SQLFile is set.
	SQL string `yaml:"sql,omitempty"`
	// SQLFile is a file holding the query, relative to Spec.Dir.
	SQLFile string `yaml:"sql_file,omitempty"`
	// Sources are the table names the query reads; each names a key of
	// Spec.Sources. Empty means all sources (see Inputs).
	Sources []string `yaml:"sources,omitempty"`
	// Sink names the key of Spec.Sinks the result is written to.
	Sink string `yaml:"sink,omitempty"`
	// Partition tells the planner how to split the work.
	Partition Partition `yaml:"partition,omitempty"`
	// Input is what a batch_inference task scores: the name of a source,
	// or of an earlier sql task of the same pipeline (the two then run in
	// one pass over each partition, with no intermediate files).
	Input string `yaml:"input,omitempty"`
	// Model is the model a batch_inference task scores with.
	Model *Model `yaml:"model,omitempty"`
	// Output shapes a batch_inference task's result.
	Output *Output `yaml:"output,omitempty"`
	// DependsOn names tasks of the same pipeline that must succeed first;
	// a task may read an earlier task's result as a table of its name.
	DependsOn []string `yaml:"depends_on,omitempty"`
	// Retries is how many times a failed partition is retried (transient
	// errors; default 2).
	Retries *int `yaml:"retries,omitempty"`
	// RetryDelay is the first wait before a retry ("10s"); it doubles.
	RetryDelay string `yaml:"retry_delay,omitempty"`
	// Timeout bounds the task ("30m"); on expiry it fails.
	Timeout string `yaml:"timeout,omitempty"`
	// Checks are data checks on the task's output, run before commit.
	Checks []Check `yaml:"checks,omitempty"`
	// Command is the program and arguments of a command task.
	Command []string `yaml:"command,omitempty"`
	// Env adds environment variables for a command or spark task.
	Env map[string]string `yaml:"env,omitempty"`
	// Spark describes the application of a spark task.
	Spark *Spark `yaml:"spark,omitempty"`
}

// Check is one data check on a task's output.
type Check struct {
	// Name identifies the check in results (default: type and columns).
	Name string `yaml:"name,omitempty"`
	// Type is row_count, not_null, unique, accepted_values,
	// relationships or sql.
	Type string `yaml:"type"`
	// Columns are the checked columns (not_null, unique: the combination;
	// accepted_values, relationships: one column).
	Columns []string `yaml:"columns,omitempty"`
	// Min and Max bound the row count (row_count).
	Min *int64 `yaml:"min,omitempty"`
	Max *int64 `yaml:"max,omitempty"`
	// Values are the accepted values (accepted_values).
	Values []string `yaml:"values,omitempty"`
	// To is the source or task the column must reference, and Field its
	// column (relationships).
	To    string `yaml:"to,omitempty"`
	Field string `yaml:"field,omitempty"`
	// SQL is an assertion over the output, read as table "output": the
	// rows it returns are failures (sql).
	SQL string `yaml:"sql,omitempty"`
	// Severity is error (default: blocks the commit) or warn (alerts only).
	Severity string `yaml:"severity,omitempty"`
}

// Spark is a Spark application run with spark-submit.
type Spark struct {
	// Application is the jar or Python file, relative to the spec.
	Application string `yaml:"application"`
	// Class is the main class of a jar application.
	Class string `yaml:"class,omitempty"`
	// Master is the Spark master (default local[*]).
	Master string `yaml:"master,omitempty"`
	// Conf are --conf settings.
	Conf map[string]string `yaml:"conf,omitempty"`
	// Args are the application's arguments.
	Args []string `yaml:"args,omitempty"`
	// SparkSubmit is the spark-submit program (default: spark-submit on
	// PATH or under $SPARK_HOME/bin).
	SparkSubmit string `yaml:"spark_submit,omitempty"`
}

// Model describes a model file and how its inputs bind to columns.
type Model struct {
	// Format is xgboost, lightgbm, onnx, linear, mlflow or command; empty
	// means detect it from the file.
	Format string `yaml:"format,omitempty"`
	// Path is the model file or MLflow model directory, relative to the
	// spec's directory.
	Path string `yaml:"path,omitempty"`
	// Features names the input columns feeding the model's inputs, in the
	// model's order; empty binds by the feature names stored in the model.
	Features []string `yaml:"features,omitempty"`
	// Runtime is the path of libonnxruntime for onnx models (default:
	// LIMINAL_ONNXRUNTIME_LIB, then the documented search path).
	Runtime string `yaml:"runtime,omitempty"`
	// Command is the program (and its arguments) of a command model; it
	// reads Arrow IPC batches on stdin and writes scored batches to stdout.
	Command []string `yaml:"command,omitempty"`
	// Env adds environment variables for a command model.
	Env map[string]string `yaml:"env,omitempty"`
	// Timeout bounds one batch of a command model ("30s", "10m"); default
	// 10m.
	Timeout string `yaml:"timeout,omitempty"`
	// Inputs are the columns a command model receives; empty means all.
	Inputs []string `yaml:"inputs,omitempty"`
	// Outputs declare a command model's output columns and types, in order.
	Outputs []ModelOutput `yaml:"outputs,omitempty"`
	// Threads is the number of threads one model call may use (onnx); 0
	// means one per worker slot.
	Threads int `yaml:"threads,omitempty"`
}

// ModelOutput is one declared output column of a command model.
type ModelOutput struct {
	// Name is the column name.
	Name string `yaml:"name"`
	// Type is double, float, bigint, integer, boolean or varchar.
	Type string `yaml:"type"`
}

// Output shapes the result of a batch_inference task.
type Output struct {
	// Columns are the input columns passed through next to the
	// predictions; empty passes every input column through.
	Columns []string `yaml:"columns,omitempty"`
	// Prediction names the prediction column (default "prediction").
	Prediction string `yaml:"prediction,omitempty"`
	// Probabilities names the per-class probability columns of a
	// multi-class model, one per class (default probability_0, ...).
	Probabilities []string `yaml:"probabilities,omitempty"`
}

// Partition tells the planner how to split a task into parallel work.
type Partition struct {
	// Source is the input that is split; it is one of the task's inputs. ""
	// lets the planner pick the largest.
	Source string `yaml:"source,omitempty"`
	// By is the split strategy: "auto", "files", "row_groups" or "none"; ""
	// means "auto".
	By string `yaml:"by,omitempty"`
	// TargetRows is the wanted number of rows per partition; 0 means no
	// target.
	TargetRows int64 `yaml:"target_rows,omitempty"`
	// TargetBytes is the wanted number of input bytes per partition; 0 means
	// no target.
	TargetBytes int64 `yaml:"target_bytes,omitempty"`
	// MaxPartitions caps the number of partitions; 0 means no cap.
	MaxPartitions int `yaml:"max_partitions,omitempty"`
}

// Service is a named long-running endpoint, run by "liminal serve".
type Service struct {
	// Service is the name; required and unique within the spec.
	Service string `yaml:"service"`
	// Type is the kind of service; "http_inference" is the only known type.
	Type string `yaml:"type"`
	// Model describes the model the service serves.
	Model *Model `yaml:"model,omitempty"`
	// Listen is the host:port address to listen on.
	Listen string `yaml:"listen,omitempty"`
}

// Query returns the SQL text of the task: SQL itself, or the contents of
// SQLFile read relative to s.Dir. It is an error when the text is empty.
func (t Task) Query(s *Spec) (string, error) {
	if t.SQL != "" {
		if strings.TrimSpace(t.SQL) == "" {
			return "", fmt.Errorf("task %q: sql is empty", t.Task)
		}
		return t.SQL, nil
	}
	if t.SQLFile == "" {
		return "", fmt.Errorf("task %q: neither sql nor sql_file is set", t.Task)
	}
	path := s.resolve(t.SQLFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("task %q: read sql_file: %w", t.Task, err)
	}
	if strings.TrimSpace(string(data)) == "" {
		return "", fmt.Errorf("task %q: sql file %q is empty", t.Task, path)
	}
	return string(data), nil
}

// Inputs returns the names of the sources the task reads: its Sources, or,
// when that is empty, every source of s in sorted order.
func (t Task) Inputs(s *Spec) []string {
	if len(t.Sources) > 0 {
		return slices.Clone(t.Sources)
	}
	if s == nil {
		return nil
	}
	return sortedKeys(s.Sources)
}

// Pipeline returns the pipeline with the given name. The empty name selects
// the only pipeline of the spec, and is an error when there are several.
func (s *Spec) Pipeline(name string) (*Pipeline, error) {
	names := make([]string, len(s.Pipelines))
	for i := range s.Pipelines {
		names[i] = s.Pipelines[i].Pipeline
	}
	switch {
	case len(s.Pipelines) == 0:
		return nil, errors.New("spec defines no pipelines")
	case name == "" && len(s.Pipelines) == 1:
		return &s.Pipelines[0], nil
	case name == "":
		return nil, fmt.Errorf("spec defines %d pipelines, choose one of: %s", len(names), strings.Join(names, ", "))
	}
	for i := range s.Pipelines {
		if s.Pipelines[i].Pipeline == name {
			return &s.Pipelines[i], nil
		}
	}
	return nil, fmt.Errorf("unknown pipeline %q (known: %s)", name, strings.Join(names, ", "))
}

// resolve returns path relative to the spec's directory, or path itself
// when it is absolute.
func (s *Spec) resolve(path string) string {
	if filepath.IsAbs(path) || s == nil {
		return path
	}
	return filepath.Join(s.Dir, path)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
