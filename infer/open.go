package infer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Model scores Arrow record batches. Implementations are safe for
// concurrent use by several partitions (and HTTP requests) at once.
type Model interface {
	// InputSchema lists the model's inputs in order: a name per feature and
	// the type the model computes in. Predict accepts any column type that
	// Bind accepted for the field (integers, floats, booleans and decimals
	// for numeric features), not only the exact type.
	InputSchema() *arrow.Schema
	// OutputSchema lists the columns Predict returns.
	OutputSchema() *arrow.Schema
	// Predict scores in, whose columns are the model's inputs in
	// InputSchema order (as Binding.Inputs builds them). It returns a new
	// batch with OutputSchema and in.NumRows() rows, which the caller
	// releases; in is not retained. Nulls are missing values.
	Predict(ctx context.Context, in arrow.RecordBatch) (arrow.RecordBatch, error)
	// Close releases the model's resources (sessions, processes). It is
	// idempotent; Predict must not be called after it.
	Close() error
}

// Config says which model to load and how. Paths are relative to Dir.
type Config struct {
	// Mem allocates the output batches of our own evaluators (XGBoost,
	// LightGBM, linear); nil means memory.DefaultAllocator.
	Mem memory.Allocator `json:"-"`
	// Format is xgboost, lightgbm, onnx, linear, mlflow or command; empty
	// means detect it from Path (DetectFormat).
	Format string `json:"format,omitempty"`
	// Path is the model file (or MLflow model directory).
	Path string `json:"path,omitempty"`
	// Dir resolves relative paths (the spec file's directory).
	Dir string `json:"dir,omitempty"`
	// Features, when set, names the input columns feeding the model's
	// inputs in order, overriding the names stored in the model (models
	// saved from NumPy arrays only know f0, f1, ...).
	Features []string `json:"features,omitempty"`
	// Runtime is the path of libonnxruntime (ONNX models); empty means
	// LIMINAL_ONNXRUNTIME_LIB or the documented search path.
	Runtime string `json:"runtime,omitempty"`
	// Command is the user program of a command model (argv).
	Command []string `json:"command,omitempty"`
	// Env adds variables to the command model's environment (NAME=VALUE).
	Env []string `json:"env,omitempty"`
	// Timeout bounds one Predict call of a command model (0: 10 minutes).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Outputs declares a command model's output columns (name -> Arrow
	// SQL type name: double, float, bigint, integer, boolean, varchar), in
	// order.
	Outputs []OutputField `json:"outputs,omitempty"`
	// Inputs declares a command model's input columns; empty means every
	// column of the input passes to the program.
	Inputs []string `json:"inputs,omitempty"`
	// Threads bounds the threads one model may use per Predict call (ONNX
	// intra-op threads); 0 means one.
	Threads int `json:"threads,omitempty"`
}

// OutputField is one declared output column of a command model.
type OutputField struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Resolve returns p made absolute against Dir.
func (c Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Dir == "" {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// Opener loads one model format.
type Opener func(cfg Config) (Model, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{}
)

// Register makes a model format available to Open. Formats that need cgo
// or extra libraries (onnx) register from their own package; it panics on
// a duplicate name.
func Register(format string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	if _, dup := openers[format]; dup {
		panic("infer: format " + format + " registered twice")
	}
	openers[format] = open
}

// Formats lists the registered model formats, sorted.
func Formats() []string {
	openersMu.RLock()
	defer openersMu.RUnlock()
	out := make([]string, 0, len(openers))
	for f := range openers {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// ErrUnknownFormat is returned by Open for a format nobody registered.
var ErrUnknownFormat = errors.New("unknown model format")

// Open loads the model cfg describes.
func Open(cfg Config) (Model, error) {
	if cfg.Mem == nil {
		cfg.Mem = memory.DefaultAllocator
	}
	format := cfg.Format
	if format == "" {
		f, err := DetectFormat(cfg.Resolve(cfg.Path))
		if err != nil {
			return nil, err
		}
		format = f
	}
	openersMu.RLock()
	open, ok := openers[format]
	openersMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownFormat, format, strings.Join(Formats(), ", "))
	}
	cfg.Format = format
	return open(cfg)
}

// DetectFormat guesses a model file's format from its name and first bytes:
// a directory with an MLmodel file is mlflow, .onnx is onnx, .txt with
// LightGBM's "tree" header is lightgbm, JSON with a "learner" key is
// xgboost and JSON with "coefficients" is linear.
func DetectFormat(path string) (string, error) {
	if path == "" {
		return "", errors.New("model: no path and no format")
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("model: %w", err)
	}
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "MLmodel")); err == nil {
			return "mlflow", nil
		}
		return "", fmt.Errorf("model %s: a directory without an MLmodel file", path)
	}
	if strings.EqualFold(filepath.Ext(path), ".onnx") {
		return "onnx", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("model: %w", err)
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := f.Read(head)
	head = head[:n]
	s := strings.TrimSpace(string(head))
	switch {
	case strings.HasPrefix(s, "tree\n") || strings.HasPrefix(s, "tree\r\n") || s == "tree":
		return "lightgbm", nil
	case strings.HasPrefix(s, "{") && strings.Contains(s, `"learner"`):
		return "xgboost", nil
	case strings.HasPrefix(s, "{") && strings.Contains(s, `"coefficients"`):
		return "linear", nil
	}
	return "", fmt.Errorf("model %s: cannot tell the format from the file; set model.format (one of %s)", path, strings.Join(Formats(), ", "))
}
