package fsread

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestImportsStdlibOnly enforces the package contract (doc.go): the
// non-test sources import only the standard library.
func TestImportsStdlibOnly(t *testing.T) {
	entries, err := os.ReadDir(".")
	must(t, err)
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		must(t, err)
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") || first == "bes" {
				t.Errorf("%s imports %s; only the standard library is allowed", name, p)
			}
		}
	}
}
