package archtest_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/dddkit/dddkit/examples/authnotify"

// imports returns, per file under the module root, the import paths.
func imports(t *testing.T, includeTests bool) map[string][]string {
	t.Helper()
	root := filepath.Join("..", "..")
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || (!includeTests && strings.HasSuffix(path, "_test.go")) {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			out[filepath.ToSlash(rel)] = append(out[filepath.ToSlash(rel)], p)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, out)
	return out
}

func TestModulesDoNotImportEachOther(t *testing.T) {
	t.Parallel()
	all := imports(t, true)
	require.Contains(t, all, "auth/domain/user.go", "the walk found the modules")
	require.Contains(t, all, "notification/app/handlers.go", "the walk found the modules")
	for file, paths := range all {
		for _, p := range paths {
			if strings.HasPrefix(file, "auth/") {
				require.False(t, strings.HasPrefix(p, module+"/notification"), "%s imports %s", file, p)
			}
			if strings.HasPrefix(file, "notification/") {
				require.False(t, strings.HasPrefix(p, module+"/auth"), "%s imports %s: use contracts/authevents", file, p)
			}
			if strings.HasPrefix(file, "contracts/") || strings.HasPrefix(file, "internal/") {
				require.False(t, strings.HasPrefix(p, module+"/auth") || strings.HasPrefix(p, module+"/notification"),
					"shared package %s imports module package %s", file, p)
			}
		}
	}
}

// Domain code imports the dddkit building blocks, the event contract and
// the standard library minus I/O, nothing else.
func TestDomainsImportNoInfrastructure(t *testing.T) {
	t.Parallel()
	allowed := map[string]bool{
		"github.com/dddkit/dddkit/aggregate":   true,
		"github.com/dddkit/dddkit/valueobject": true,
		module + "/contracts/authevents":       true,
	}
	banned := []string{"net", "database/sql", "os", "encoding/json", "log"}
	for file, paths := range imports(t, false) {
		if !strings.Contains(file, "/domain/") {
			continue
		}
		for _, p := range paths {
			if strings.Contains(p, ".") { // not the standard library
				require.True(t, allowed[p], "%s imports %s", file, p)
				continue
			}
			for _, b := range banned {
				require.False(t, p == b || strings.HasPrefix(p, b+"/"), "%s imports %s", file, p)
			}
		}
	}
}
