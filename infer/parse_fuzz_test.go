package infer

import (
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParseLinear: any input either loads as a model whose schemas agree
// with its coefficients, or fails with an error; never a panic.
func FuzzParseLinear(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "linear", "*.json"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"features":["a"],"coefficients":[[1],[2]],"intercept":[0,1],"link":"softmax"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseLinear(data, nil)
		if err != nil {
			return
		}
		if m.InputSchema().NumFields() == 0 || m.OutputSchema().NumFields() == 0 {
			t.Fatalf("model without inputs or outputs from %q", data)
		}
	})
}

// FuzzMLmodel: MLmodel files of any shape pick a flavor or fail cleanly.
func FuzzMLmodel(f *testing.F) {
	for _, d := range []string{"xgb_json", "xgb_default", "lgb", "onnx"} {
		if b, err := os.ReadFile(filepath.Join("testdata", "mlflow", d, "MLmodel")); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var mm mlModel
		if yaml.Unmarshal(data, &mm) != nil {
			return
		}
		_, _, _ = mlflowFlavor(t.TempDir(), &mm)
		if mm.Signature != nil {
			_ = signatureColumns(mm.Signature.Inputs)
		}
	})
}
