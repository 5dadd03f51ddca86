package spec

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDependencies fails when the package imports anything beyond the
// standard library and the modules it is allowed: package spec sits at the
// bottom of the liminal dependency graph.
func TestDependencies(t *testing.T) {
	allowed := map[string]bool{
		"gopkg.in/yaml.v3":              true,
		"github.com/invopop/jsonschema": true,
	}
	allowedInTests := map[string]bool{
		"github.com/santhosh-tekuri/jsonschema/v6": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files: %v", err)
	}
	fset := token.NewFileSet()
	for _, file := range files {
		f, err := parser.ParseFile(fset, file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		isTest := strings.HasSuffix(file, "_test.go")
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(path, "/")
			switch {
			case !strings.Contains(first, "."): // standard library
			case allowed[path]:
			case isTest && allowedInTests[path]:
			case strings.HasPrefix(path, "github.com/liminal-data/liminal"):
				t.Errorf("%s imports %s: package spec must not import other liminal packages", file, path)
			default:
				t.Errorf("%s imports %s, which package spec is not allowed to depend on", file, path)
			}
		}
	}
}
