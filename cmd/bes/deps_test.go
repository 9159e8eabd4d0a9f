package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// allowed lists, per top-level package, the project packages it may
// import (docs/ARCHITECTURE.md). Sub-packages of store are leaves.
var allowed = map[string][]string{
	"store":     {"store"},
	"diskimg":   {"store", "diskimg"},
	"agent":     {"store", "agent"},
	"board":     {"board"},
	"cloudlink": {"board", "cloudlink"},
	"pxe":       {"pxe"},
	"bmr":       {"diskimg", "store", "bmr"},
	"image":     {"image"},
	"appliance": {"*"},
	"cmd":       {"*"},
}

var storeLeaves = map[string]bool{"catalog": true, "chunker": true, "compress": true, "crypt": true, "ec": true, "manifest": true, "pack": true}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "bes/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(strings.TrimPrefix(p.ImportPath, "bes/"), "/")
		top := parts[0]
		rules, ok := allowed[top]
		if !ok {
			t.Errorf("%s: top-level package %q is not in the architecture's table", p.ImportPath, top)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, "bes/") {
				continue
			}
			ip := strings.Split(strings.TrimPrefix(imp, "bes/"), "/")
			if top == "store" && len(parts) > 1 && storeLeaves[parts[1]] {
				t.Errorf("%s is a leaf of store but imports %s", p.ImportPath, imp)
				continue
			}
			if rules[0] == "*" {
				continue
			}
			okImp := false
			for _, a := range rules {
				okImp = okImp || ip[0] == a
			}
			if !okImp {
				t.Errorf("%s may not import %s (allowed: %v)", p.ImportPath, imp, rules)
			}
		}
	}
}
