package connectors

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/liminal-data/liminal/partition"
)

// Source is a readable input. Implementations are safe for concurrent use
// by several worker slots.
type Source interface {
	// Schema is the Arrow schema of the whole source.
	Schema(ctx context.Context) (*arrow.Schema, error)
	// Splits cuts the source into deterministic partitions.
	Splits(ctx context.Context, o partition.Options) ([]partition.Split, error)
	// Describe is a one-line description for logs and plans; no secrets.
	Describe() string
}

// ArrowSource is a Source read through Go as Arrow record batches
// (databases and services DuckDB cannot scan itself).
type ArrowSource interface {
	Source
	// Read streams split s projected to cols (nil: all columns). The caller
	// owns the reader and must Release it.
	Read(ctx context.Context, s partition.Split, cols []string) (array.RecordReader, error)
}

// NativeSource is a Source that DuckDB scans itself (Parquet, CSV): the
// executor puts its table expression in the query instead of pulling
// batches through Go.
type NativeSource interface {
	Source
	// ScanSQL is a DuckDB table expression reading split s, e.g.
	// "read_parquet(['a.parquet'])". A nil split means the whole source.
	ScanSQL(s *partition.Split) (string, error)
}

// Mode says what a sink does with output that is already there.
type Mode string

// Sink modes.
const (
	ModeError     Mode = "error"     // refuse when the target exists (default)
	ModeAppend    Mode = "append"    // add the run's output to what is there
	ModeOverwrite Mode = "overwrite" // replace what is there, atomically
	// ModeUpsert inserts rows and replaces those whose key columns match
	// (database sinks with key columns).
	ModeUpsert Mode = "upsert"
	// ModeOverwritePartitions replaces only the partitions (partition_by
	// values) the run produced, and keeps the others.
	ModeOverwritePartitions Mode = "overwrite_partitions"
)

// ParseMode accepts "" as ModeError.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "":
		return ModeError, nil
	case ModeError, ModeAppend, ModeOverwrite, ModeUpsert, ModeOverwritePartitions:
		return Mode(s), nil
	}
	return "", Permanent(errorf("unknown sink mode %q (want append, overwrite, upsert, overwrite_partitions or error)", s))
}

// Run identifies the run a sink writes for.
type Run struct {
	ID string
}

// Sink is a writable output with exactly-once commit: every partition
// attempt writes to its own staging location; Commit publishes the chosen
// attempts at once; Abort removes a run's staging and leaves the target as
// it was.
type Sink interface {
	// Prepare checks the target before any work (mode, permissions),
	// finishes an interrupted earlier commit, and creates staging.
	Prepare(ctx context.Context, run Run) error
	// Commit publishes exactly the given manifests (one per split) at once.
	// It is idempotent: committing a run again changes nothing.
	Commit(ctx context.Context, run Run, staged []Manifest) (Committed, error)
	// Abort removes the run's staging. Idempotent.
	Abort(ctx context.Context, run Run) error
	// Describe is a one-line description for logs and plans; no secrets.
	Describe() string
}

// ArrowSink is a Sink written from Go, batch by batch.
type ArrowSink interface {
	Sink
	// Writer opens the staging writer of one attempt of split s.
	Writer(ctx context.Context, run Run, s partition.Split, attempt int, sc *arrow.Schema) (SinkWriter, error)
}

// SinkWriter writes one attempt's staged output. Not safe for concurrent use.
type SinkWriter interface {
	// Write borrows b: it must not be retained after Write returns.
	Write(ctx context.Context, b arrow.RecordBatch) error
	// Close finishes the staged output; nothing is visible until Commit.
	Close(ctx context.Context) (Manifest, error)
	// Abort discards the staged output. Idempotent.
	Abort(ctx context.Context) error
}

// NativeSink is a Sink that DuckDB writes itself with COPY ... TO.
type NativeSink interface {
	Sink
	// Stage returns where DuckDB writes one attempt of split s.
	Stage(ctx context.Context, run Run, s partition.Split, attempt int) (NativeTarget, error)
	// SingleFile reports whether the sink is one file, so the whole result
	// must be gathered by one final writer — unless the sink is also a
	// PartsJoiner that says it joins the partitions' files at commit.
	SingleFile() bool
}

// PartsJoiner is a single-file NativeSink that can join one staged file per
// partition into its one file at commit (CSV: the rows of each part after
// one header), so that a partition-local query needs no final stage that
// holds the whole result.
type PartsJoiner interface {
	JoinsParts() bool
}

// NativeTarget is the COPY target of one attempt.
type NativeTarget interface {
	// CopyTo is the target of "COPY (query) TO <CopyTo>", path and options,
	// e.g. "'/out/.x/a.parquet' (FORMAT parquet)".
	CopyTo() string
	// Close lists what DuckDB wrote; rows is the count COPY reported.
	Close(ctx context.Context, rows int64) (Manifest, error)
	// Abort removes what was written. Idempotent.
	Abort(ctx context.Context) error
}

// Manifest lists the staged output of one successful attempt.
type Manifest struct {
	SplitID string       `json:"split_id"`
	Attempt int          `json:"attempt"`
	Files   []StagedFile `json:"files"`
	Rows    int64        `json:"rows"`
	Bytes   int64        `json:"bytes"`
}

// StagedFile is one staged file and the name it gets at commit.
type StagedFile struct {
	Staged string `json:"staged"` // absolute staged path
	Final  string `json:"final"`  // path relative to the target
	Rows   int64  `json:"rows,omitempty"`
	Bytes  int64  `json:"bytes"`
}

// Committed describes a commit for the run result.
type Committed struct {
	URI   string   `json:"uri"`
	Files []string `json:"files"`
	Rows  int64    `json:"rows"`
	Bytes int64    `json:"bytes"`
	// AlreadyCommitted is set when the run had been committed before
	// (an idempotent re-run with the same run id).
	AlreadyCommitted bool `json:"already_committed,omitempty"`
}
