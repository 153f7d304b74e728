package kernel

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// The system-call handlers reach app memory through appmem.go's helpers, which answer
// EFAULT, and nowhere through a raw pointer or slice: only the loader (memory tier 1
// mapped itself), file-backed mappings and the rewriting of call sites may.
func TestHandlersReachAppMemoryThroughHelpers(t *testing.T) {
	raw := map[string]bool{"appBytes": true, "appPtr": true}
	allowed := map[string]bool{"appmem.go": true, "load.go": true, "mmap.go": true, "fastcall.go": true}
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sources: %v", err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if allowed[name] || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok {
				if id, ok := c.Fun.(*ast.Ident); ok && raw[id.Name] {
					t.Errorf("%s: %s reaches app memory without a helper", fset.Position(c.Pos()), id.Name)
				}
			}
			return true
		})
	}
}
