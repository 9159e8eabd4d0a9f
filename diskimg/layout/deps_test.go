package layout

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces doc.go: no package of this project, and outside the
// standard library only go-diskfs and golang.org/x/sys.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		first := strings.Split(imp, "/")[0]
		switch {
		case !strings.Contains(first, "."): // standard library
			if first == "bes" {
				t.Errorf("imports %s: package layout imports nothing from this project", imp)
			}
		case strings.HasPrefix(imp, "github.com/diskfs/go-diskfs/"), strings.HasPrefix(imp, "golang.org/x/sys/"):
		default:
			t.Errorf("imports %s: only go-diskfs and golang.org/x/sys are allowed", imp)
		}
	}
}
