package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// A bridge name is a Go package name and a Python module prefix ("greeter": package greeter,
// greeter_bridge.py); its title-cased form prefixes the Python class (GreeterBridge).
var bridgeNameRE = regexp.MustCompile(`^[a-z][a-z0-9]*$`)

// pythonKeywords are the lower-case words of Python's keyword.kwlist (soft keywords such as
// match and type are identifiers).
var pythonKeywords = []string{
	"and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
	"else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
	"nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
}

// checkBridgeName refuses a name the generated code could not use: not an identifier in both
// languages, a keyword of either, a predeclared Go identifier, main or init, or a name the
// generated test uses itself (its imports and variables), which the imported package would
// collide with.
func checkBridgeName(name string) error {
	const hint = "it names a Go package and a Python module; choose another"
	switch {
	case !bridgeNameRE.MatchString(name):
		return fmt.Errorf("bridge name %q: use lower case letters and digits, starting with a letter (%s)", name, hint)
	case token.IsKeyword(name):
		return fmt.Errorf("bridge name %q is a Go keyword (%s)", name, hint)
	case types.Universe.Lookup(name) != nil:
		return fmt.Errorf("bridge name %q is predeclared in Go: the package name would hide it in code that imports the package (%s)", name, hint)
	case name == "main" || name == "init":
		return fmt.Errorf("bridge name %q cannot name an importable Go package (%s)", name, hint)
	case slices.Contains(pythonKeywords, name):
		return fmt.Errorf("bridge name %q is a Python keyword (%s)", name, hint)
	}
	used, err := scaffoldIdents()
	if err != nil {
		return err
	}
	if used[name] {
		return fmt.Errorf("bridge name %q is a name the generated Go test uses itself (an import or a variable), which the imported package would collide with (%s)", name, hint)
	}
	return nil
}

// scaffoldIdents are the identifiers and import names of the generated Go files that import
// the bridge's package (its external test), read from the templates so the list follows them.
var scaffoldIdents = sync.OnceValues(func() (map[string]bool, error) {
	const probe = "mlbridgescaffoldprobe"
	const probePath = "example.com/" + probe
	files, err := render(scaffold{Name: probe, Title: "Mlbridgescaffoldprobe", ImportPath: probePath}, ".")
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	fset := token.NewFileSet()
	for file, src := range files {
		if !strings.HasSuffix(file, ".go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, src, 0)
		if err != nil {
			return nil, fmt.Errorf("template of %s: %w", file, err)
		}
		if !slices.ContainsFunc(f.Imports, func(imp *ast.ImportSpec) bool { return imp.Path.Value == strconv.Quote(probePath) }) {
			continue // the package itself: its own name is not in its scope
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			used[path.Base(p)] = true
			if imp.Name != nil {
				used[imp.Name.Name] = true
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && !strings.Contains(id.Name, probe) {
				used[id.Name] = true
			}
			return true
		})
	}
	return used, nil
})
