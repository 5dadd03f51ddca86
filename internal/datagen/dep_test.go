package datagen

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// modulePath is the liminal module; datagen must not import any package of
// it (see doc.go).
const modulePath = "github.com/liminal-data/liminal"

func TestNoLiminalImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Go files found")
	}
	fset := token.NewFileSet()
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if path == modulePath || strings.HasPrefix(path, modulePath+"/") {
				t.Errorf("%s imports %s: datagen must not import other liminal packages", fset.Position(imp.Pos()), path)
			}
		}
	}
}
