package placement

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps placement pure: besides the standard library it may
// import only cluster (ours) and the xxh3 hash.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/shale-store/shale/cluster": true,
		"github.com/zeebo/xxh3":                true,
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if !allowed[path] && strings.Contains(first, ".") {
				t.Errorf("%s imports %s", f, path)
			}
			if path == "os" || path == "net" || path == "time" || strings.HasPrefix(path, "math/rand") {
				t.Errorf("%s imports %s: placement is pure (no I/O, clock or randomness)", f, path)
			}
		}
	}
}
