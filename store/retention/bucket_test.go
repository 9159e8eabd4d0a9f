package retention

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestBucketRuleNonMonotonic feeds keys as local time that runs backwards
// across a bucket boundary produces them: each distinct key is kept once.
func TestBucketRuleNonMonotonic(t *testing.T) {
	tests := []struct {
		name string
		n    int
		keys []int64
		want []bool
	}{
		{"monotonic", 3, []int64{9, 9, 8, 7, 7, 6, 5}, []bool{true, false, true, true, false, false, false}},
		{"bucket comes back", 5, []int64{21, 20, 21, 20, 19}, []bool{true, true, false, false, true}},
		{"unseen bucket above the minimum", 5, []int64{20, 21, 19}, []bool{true, true, true}},
		{"full", 2, []int64{21, 20, 21, 19}, []bool{true, true, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bucketRule{left: tt.n}
			for i, k := range tt.keys {
				if got := b.take(k); got != tt.want[i] {
					t.Errorf("take(%d) #%d = %v, want %v", k, i, got, tt.want[i])
				}
			}
		})
	}
}

func TestAppendPad(t *testing.T) {
	for _, tt := range []struct {
		v, width int
		want     string
	}{
		{0, 2, "00"}, {7, 2, "07"}, {10, 2, "10"}, {123, 2, "123"},
		{2026, 4, "2026"}, {99, 4, "0099"}, {0, 4, "0000"}, {-5, 4, "-5"}, {5, 1, "5"},
	} {
		if got := string(appendPad(nil, tt.v, tt.width)); got != tt.want {
			t.Errorf("appendPad(%d, %d) = %q, want %q", tt.v, tt.width, got, tt.want)
		}
	}
}

// TestImports enforces the package contract (doc.go): the non-test
// sources import only these standard packages, none of which does I/O.
func TestImports(t *testing.T) {
	allowed := map[string]bool{"cmp": true, "errors": true, "fmt": true, "math/bits": true,
		"slices": true, "strconv": true, "strings": true, "time": true}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[p] {
				t.Errorf("%s imports %s; retention is pure and may import only %v", name, p, allowed)
			}
		}
	}
}
