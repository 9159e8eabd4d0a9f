package integrity

import (
	"os/exec"
	"strings"
	"testing"
)

// The package imports the standard library only (see doc.go), so a third
// party can vendor it to verify reports.
func TestImportsStdlibOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") || first == "bes" {
			t.Errorf("integrity imports %s; it may import the standard library only", imp)
		}
	}
}
