package infer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"gopkg.in/yaml.v3"
)

// mlflowFlavors are the MLmodel flavors Liminal loads, in order of
// preference, with the format each maps to.
var mlflowFlavors = []struct{ flavor, format string }{
	{"xgboost", "xgboost"},
	{"lightgbm", "lightgbm"},
	{"onnx", "onnx"},
}

// mlModel is the part of an MLflow MLmodel file Liminal reads.
type mlModel struct {
	Flavors   map[string]map[string]any `yaml:"flavors"`
	Signature *struct {
		Inputs string `yaml:"inputs"`
	} `yaml:"signature"`
}

// OpenMLflow loads an MLflow model directory: it reads the MLmodel file
// and opens the xgboost, lightgbm or onnx flavor it names. When the model
// file stores no feature names (f0, f1, ...), the column names of the
// MLflow signature name the inputs.
func OpenMLflow(cfg Config) (Model, error) {
	dir := cfg.Resolve(cfg.Path)
	if st, err := os.Stat(dir); err == nil && !st.IsDir() && filepath.Base(dir) == "MLmodel" {
		dir = filepath.Dir(dir)
	}
	data, err := os.ReadFile(filepath.Join(dir, "MLmodel"))
	if err != nil {
		return nil, fmt.Errorf("mlflow model: %w", err)
	}
	var mm mlModel
	if err := yaml.Unmarshal(data, &mm); err != nil {
		return nil, fmt.Errorf("mlflow model %s: MLmodel: %w", dir, corruptf("%v", err))
	}
	sub, format, err := mlflowFlavor(dir, &mm)
	if err != nil {
		return nil, fmt.Errorf("mlflow model %s: %w", dir, err)
	}
	inner := cfg
	inner.Format, inner.Path, inner.Dir = format, sub, ""
	m, err := Open(inner)
	if err != nil {
		return nil, fmt.Errorf("mlflow model %s (%s flavor): %w", dir, format, err)
	}
	if len(cfg.Features) > 0 || mm.Signature == nil {
		return m, nil
	}
	names := signatureColumns(mm.Signature.Inputs)
	if len(names) != m.InputSchema().NumFields() || !defaultNames(m.InputSchema().Fields()) {
		return m, nil
	}
	_ = m.Close()
	inner.Features = names
	return Open(inner)
}

// mlflowFlavor picks the flavor to load and its model file.
func mlflowFlavor(dir string, mm *mlModel) (path, format string, err error) {
	for _, f := range mlflowFlavors {
		fl, ok := mm.Flavors[f.flavor]
		if !ok {
			continue
		}
		data, _ := fl["data"].(string)
		if f.flavor == "xgboost" {
			if mf, _ := fl["model_format"].(string); mf != "" && mf != "json" {
				return "", "", unsupportedf("xgboost flavor saved as %q; Liminal reads XGBoost JSON: save with mlflow.xgboost.save_model(..., model_format=\"json\")", mf)
			}
		}
		if data == "" {
			// onnx flavor: the file is named in "data"; fall back to the
			// only file with the flavor's extension.
			ms, _ := filepath.Glob(filepath.Join(dir, "*."+f.flavor))
			if len(ms) != 1 {
				return "", "", corruptf("%s flavor names no model file", f.flavor)
			}
			return ms[0], f.format, nil
		}
		p := filepath.Join(dir, filepath.FromSlash(data))
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			// Some flavors store a directory holding the model file.
			ms, _ := filepath.Glob(filepath.Join(p, "*"))
			if len(ms) != 1 {
				return "", "", corruptf("%s flavor: %s holds %d files, want one", f.flavor, data, len(ms))
			}
			p = ms[0]
		}
		return p, f.format, nil
	}
	have := make([]string, 0, len(mm.Flavors))
	for k := range mm.Flavors {
		have = append(have, k)
	}
	sort.Strings(have)
	if len(have) == 0 {
		return "", "", corruptf("MLmodel lists no flavors")
	}
	return "", "", unsupportedf("MLmodel flavors [%s]: Liminal loads xgboost, lightgbm or onnx (export sklearn models to ONNX with skl2onnx)", strings.Join(have, ", "))
}

// signatureColumns returns the column names of an MLflow column-based
// signature ("[{\"name\": \"age\", \"type\": \"double\"}, ...]"); nil for
// tensor-based signatures or names that are missing.
func signatureColumns(inputs string) []string {
	var cols []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal([]byte(inputs), &cols); err != nil {
		return nil
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		if c.Name == "" || c.Type == "tensor" {
			return nil
		}
		names[i] = c.Name
	}
	return names
}

var defaultName = regexp.MustCompile(`^(f|Column_)\d+$`)

// defaultNames reports whether fields carry generated names (f0, Column_0).
func defaultNames(fields []arrow.Field) bool {
	for _, f := range fields {
		if !defaultName.MatchString(f.Name) {
			return false
		}
	}
	return true
}

func init() {
	Register("mlflow", func(cfg Config) (Model, error) {
		if cfg.Path == "" {
			return nil, errors.New("mlflow model: no path")
		}
		return OpenMLflow(cfg)
	})
}
