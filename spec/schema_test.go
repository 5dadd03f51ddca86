package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

func TestSchemaGolden(t *testing.T) {
	got, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "liminal.schema.json", got)
	if !*rewrite && !bytes.Equal(SchemaJSON, got) {
		t.Error("SchemaJSON differs from JSONSchema(); rebuild after go test ./spec -run TestSchemaGolden -rewrite")
	}
}

// compileSchema compiles the committed schema.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(SchemaJSON))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// yamlToJSON converts a YAML file, as written, to a JSON value for the
// schema validator.
func yamlToJSON(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestSchemaAcceptsValidSpecs(t *testing.T) {
	sch := compileSchema(t)
	paths, err := filepath.Glob(filepath.Join("testdata", "valid", "*.yml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no valid specs: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if err := sch.Validate(yamlToJSON(t, path)); err != nil {
				t.Errorf("%s does not validate against the schema:\n%v", path, err)
			}
		})
	}
}

func TestSchemaRejectsInvalidSpecs(t *testing.T) {
	sch := compileSchema(t)
	// The invalid specs whose problem the schema can see; the others (unknown
	// references, missing files, duplicate names, unset variables) are
	// caught only by the loader.
	tests := map[string]struct {
		file    string
		keyword string // a fragment of the validation error
	}{
		"unknown field":    {file: "unknown_field.yml", keyword: "additional properties"},
		"wrong type":       {file: "wrong_type.yml", keyword: "got array, want string"},
		"missing required": {file: "missing_required.yml", keyword: "missing property"},
		"bad enum":         {file: "bad_enum.yml", keyword: "value must be one of"},
		"sql and sql_file": {file: "sql_and_sql_file.yml", keyword: "oneOf"},
		"bad names":        {file: "bad_names.yml", keyword: "does not match pattern"},
		"negative numbers": {file: "parquet_only.yml", keyword: "minimum"},
		"no pipelines":     {file: "no_pipelines.yml", keyword: "anyOf"},
		"many errors":      {file: "many_errors.yml", keyword: "additional properties"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := sch.Validate(yamlToJSON(t, filepath.Join("testdata", "invalid", tc.file)))
			if err == nil {
				t.Fatalf("%s validates against the schema", tc.file)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.keyword) {
				t.Errorf("validation error does not mention %q:\n%s", tc.keyword, msg)
			}
		})
	}
}

func TestSchemaAllowsInterpolation(t *testing.T) {
	sch := compileSchema(t)
	tests := map[string]struct {
		doc  string
		want bool
	}{
		"integer from env":  {doc: `{"name": "x", "services": [{"service": "s", "type": "http_inference"}], "sinks": {"o": {"uri": "o.parquet", "row_group_size": "${ROWS:-100}"}}}`, want: true},
		"enum from env":     {doc: `{"name": "x", "services": [{"service": "s", "type": "http_inference"}], "sinks": {"o": {"uri": "o", "mode": "${MODE}"}}}`, want: true},
		"integer as string": {doc: `{"name": "x", "services": [{"service": "s", "type": "http_inference"}], "sinks": {"o": {"uri": "o.parquet", "row_group_size": "100"}}}`, want: false},
		"enum typo":         {doc: `{"name": "x", "services": [{"service": "s", "type": "http_inference"}], "sinks": {"o": {"uri": "o", "mode": "apend"}}}`, want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			err = sch.Validate(inst)
			if got := err == nil; got != tc.want {
				t.Errorf("valid = %v, want %v (%v)", got, tc.want, err)
			}
		})
	}
}
