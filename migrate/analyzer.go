// Package migrate is the analyzer behind `mlbridge migrate`: it rewrites what `go fix` cannot
// or must not (the legacy adapters' type aliases, which go fix's inliner must leave alone; the
// legacy method calls p.X(…) → p.Client.X(…), directly or through embedded fields, whatever their
// arguments) and reports every remaining use of the legacy API — constructors, the package-level
// default pool, method values, method expressions, the import of the package, and files the
// build leaves out — with its replacement. Built on golang.org/x/tools/go/analysis, so any
// driver can run it. Each finding says whether staticcheck's SA1019 reports it too (sa1019.go).
//
// One job per file: analyzer.go finds the uses (go/types objects and selections, never names),
// imports.go names and imports package dspy, report.go words what a person must change.
package migrate

import (
	"fmt"
	"go/ast"
	"go/scanner"
	"go/token"
	"go/types"
	"reflect"
	"strings"

	"golang.org/x/tools/go/analysis"
)

const (
	legacyPath = "github.com/mlbridge/mlbridge/adapters"
	dspyPath   = "github.com/mlbridge/mlbridge/dspy"
)

// renames are legacy names with a same-named (or renamed) replacement in package dspy: a
// fix rewrites them.
var renames = map[string]string{
	"LMConfig": "LMConfig", "ProgramOption": "ProgramOption", "ProgramInfo": "ProgramInfo",
	"FieldInfo": "FieldInfo", "DSPyBridge": "Bridge", "WithModule": "WithModule",
	"WithInstructions": "WithInstructions", "WithFieldDescriptions": "WithFieldDescriptions",
	"WithID": "WithID",
}

// reports are legacy names whose replacement changes the call's shape: reported, not rewritten.
var reports = map[string]string{
	"NewPythonPoolV2": "a bridge running dspy.Bridge in a mlbridge.Registry: reg.Adapter(ctx, name), then dspy.New(a)",
	"NewPythonPort":   "a bridge with mode: process in a mlbridge.Registry: reg.Adapter(ctx, name), then dspy.New(a)",
	"Options":         "a bridge declaration in mlbridge.yaml (mlbridge.BridgeConfig)",
	"PythonPoolV2":    "mlbridge.Adapter with dspy.Client",
	"PythonPort":      "mlbridge.Adapter with dspy.Client",
	"CreateProgram":   "dspy.New(a).CreateProgram, a from mlbridge.Registry.Default",
	"ExecuteProgram":  "dspy.New(a).ExecuteProgram, a from mlbridge.Registry.Default",
	"ListPrograms":    "dspy.New(a).ListPrograms, a from mlbridge.Registry.Default",
	"DeleteProgram":   "dspy.New(a).DeleteProgram, a from mlbridge.Registry.Default",
	"ConfigureLM":     "dspy.New(a).ConfigureLM, a from mlbridge.Registry.Default",
	"GetProgramInfo":  "dspy.New(a).GetProgramInfo, a from mlbridge.Registry.Default",
	"HealthCheck":     "a.Health(ctx), a from mlbridge.Registry.Default",
	"GetStats":        "a.Stats(), a from mlbridge.Registry.Default (Stats is a method of mlbridge.Adapter)",
	"Default":         "mlbridge.Registry.Default",
	"SetDefault":      "mlbridge.Registry.SetDefault",
	"CloseDefault":    "mlbridge.Registry.Close",
}

// Analyzer finds uses of the legacy adapters package.
var Analyzer = &analysis.Analyzer{
	Name: "mlbridgemigrate",
	Doc:  "rewrite the deprecated mlbridge adapters API where the replacement is a rename, and report the rest",
	URL:  "https://github.com/mlbridge/mlbridge/blob/main/docs/MIGRATION.md",
	Run:  run,
	// which of its diagnostics staticcheck's SA1019 does not report, and why (Finding.NotSA1019)
	ResultType: reflect.TypeFor[*unseen](),
}

func run(pass *analysis.Pass) (any, error) {
	u := newUnseen()
	// The legacy package and its external tests are the API, not its users (SA1019 too
	// lets a package use its own deprecated names).
	if strings.TrimSuffix(pass.Pkg.Path(), "_test") == legacyPath {
		return u, nil
	}
	for _, f := range pass.Files {
		u.addDeprecatedFuncs(f)
		u.addLintIgnores(pass.Fset, f)
		checkFile(pass, f, u)
	}
	reportIgnoredFiles(pass, u)
	return u, nil
}

// checkFile rewrites the renames in f (one import fix for the file) and reports the rest,
// the imports of the legacy package included.
func checkFile(pass *analysis.Pass, f *ast.File, u *unseen) {
	var renamed []ast.Expr // adapters.X or, dot-imported, X
	// legacy names per import of the legacy package: renamed, or left after the fixes
	renamedBy, othersBy := map[*ast.ImportSpec]int{}, map[*ast.ImportSpec]int{}
	seen := map[*ast.Ident]bool{}
	called := map[*ast.SelectorExpr]bool{} // selectors a call calls: p.X in p.X(…)
	use := func(e ast.Expr, obj types.Object) {
		if classify(pass, e, obj, u) {
			renamed = append(renamed, e)
			renamedBy[specOf(pass, f, e)]++
		} else {
			othersBy[specOf(pass, f, e)]++
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if sel, ok := ast.Unparen(n.Fun).(*ast.SelectorExpr); ok {
				called[sel] = true
			}
		case *ast.SelectorExpr:
			if s := pass.TypesInfo.Selections[n]; s != nil {
				if fn, ok := s.Obj().(*types.Func); ok && isLegacyMethod(fn) {
					if !called[n] || !rewriteCall(pass, n, s, fn) {
						reportMethod(pass, f, n, s, fn)
					}
				}
				return true
			}
			if obj := legacyObject(pass, n.Sel); obj != nil {
				seen[n.Sel] = true
				if pass.TypesInfo.Defs[n.Sel] != nil { // the name of an embedded field
					u.at[n.Pos()] = EmbeddedType
				}
				use(n, obj)
			}
		case *ast.Ident: // a dot-imported legacy name
			if seen[n] {
				return true
			}
			if obj := legacyObject(pass, n); obj != nil {
				u.at[n.Pos()] = DotImported
				use(n, obj)
			}
		}
		return true
	})
	// The imports whose every use is a rename are left unused by the fixes: they go.
	var freed []*ast.ImportSpec
	for _, imp := range legacyImports(pass, f) {
		if renamedBy[imp] > 0 && othersBy[imp] == 0 {
			freed = append(freed, imp)
		}
	}
	if len(renamed) == 0 {
		reportImports(pass, f, nil)
		return
	}
	var first *ast.ImportSpec
	if len(freed) > 0 {
		first = freed[0]
	}
	name, imports := dspyImport(pass, f, renamed, first)
	fixes := map[*ast.ImportSpec][]analysis.TextEdit{}
	for i, imp := range freed {
		if i == 0 {
			fixes[imp], imports = imports, nil // the import edits go with the import they free
		} else {
			fixes[imp] = removeImport(pass, f, imp)
		}
	}
	reportImports(pass, f, fixes)
	for i, e := range renamed {
		from := legacyName(e)
		to := renames[from]
		edits := renameEdits(pass, e, name, to)
		if i == 0 {
			edits = append(edits, imports...) // once per file: the fixes are applied together
		}
		pass.Report(analysis.Diagnostic{Pos: e.Pos(), End: e.End(), Category: "adapters." + from,
			Message:        fmt.Sprintf("adapters.%s is deprecated: use dspy.%s", from, to),
			SuggestedFixes: []analysis.SuggestedFix{{Message: "use dspy." + to, TextEdits: edits}}})
	}
}

// classify reports a legacy package-level name that is not a rename and says whether it is one.
// A name that is not deprecated (the deprecation controls: ErrDeprecated, Phase…) is reported
// too: it goes with the package, though SA1019 does not count it.
func classify(pass *analysis.Pass, e ast.Expr, obj types.Object, u *unseen) (rename bool) {
	name := obj.Name()
	if _, ok := renames[name]; ok {
		return true
	}
	msg := fmt.Sprintf("adapters.%s is part of the legacy API's deprecation controls: it has no replacement and goes with the legacy calls (docs/MIGRATION.md)", name)
	if repl, ok := reports[name]; ok {
		msg = fmt.Sprintf("adapters.%s is deprecated: use %s (docs/MIGRATION.md)", name, repl)
	} else {
		u.at[e.Pos()] = NotDeprecated
	}
	pass.Report(analysis.Diagnostic{Pos: e.Pos(), End: e.End(), Category: "adapters." + name, Message: msg})
	return false
}

// legacyObject is the package-level object of the legacy package id refers to, or nil.
func legacyObject(pass *analysis.Pass, id *ast.Ident) types.Object {
	obj := pass.TypesInfo.Uses[id]
	if obj == nil || obj.Pkg() == nil || obj.Pkg().Path() != legacyPath {
		return nil
	}
	if _, ok := obj.(*types.PkgName); ok || obj.Pkg().Scope().Lookup(obj.Name()) != obj {
		return nil
	}
	return obj
}

// legacyName is the legacy name e (adapters.X or X) refers to.
func legacyName(e ast.Expr) string {
	if sel, ok := e.(*ast.SelectorExpr); ok {
		return sel.Sel.Name
	}
	return e.(*ast.Ident).Name
}

// renameEdits rewrite e (adapters.X, or dot-imported X) to name.To (to, when name is "": a
// dot import of dspy): the qualifier and the name are replaced each on its own, so a comment
// between them (adapters. /* why */ X) stays.
func renameEdits(pass *analysis.Pass, e ast.Expr, name, to string) []analysis.TextEdit {
	qualified := to
	if name != "" {
		qualified = name + "." + to
	}
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return []analysis.TextEdit{{Pos: e.Pos(), End: e.End(), NewText: []byte(qualified)}}
	}
	edits := []analysis.TextEdit{{Pos: sel.X.Pos(), End: sel.X.End(), NewText: []byte(name)}}
	if name == "" { // the qualifier and its dot go; a comment before or after the dot stays
		if dot, ok := dotAfter(pass, sel.X.End()); ok {
			edits = append(edits, analysis.TextEdit{Pos: dot, End: dot + 1})
		}
	}
	if sel.Sel.Name != to {
		edits = append(edits, analysis.TextEdit{Pos: sel.Sel.Pos(), End: sel.Sel.End(), NewText: []byte(to)})
	}
	return edits
}

// dotAfter is the position of the selector's dot that follows pos, found by the Go scanner:
// a '.' inside a comment between them (adapters /* v1.2 */ .X) is not the dot.
func dotAfter(pass *analysis.Pass, pos token.Pos) (token.Pos, bool) {
	tf := pass.Fset.File(pos)
	src, _ := pass.ReadFile(tf.Name())
	off := tf.Offset(pos)
	if off >= len(src) {
		return token.NoPos, false
	}
	var sc scanner.Scanner
	rest := token.NewFileSet().AddFile("", -1, len(src)-off)
	sc.Init(rest, src[off:], nil, 0) // comments skipped
	for {
		p, tok, _ := sc.Scan()
		switch tok {
		case token.PERIOD:
			return tf.Pos(off + rest.Offset(p)), true
		case token.EOF:
			return token.NoPos, false
		}
	}
}
