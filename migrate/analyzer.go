// Package migrate is the analyzer behind `mlbridge migrate`: it rewrites what `go fix` cannot
// (the legacy adapters' type aliases, which go fix's inliner must leave alone) and reports every
// remaining use of the legacy API — constructors and the package-level default pool — with its
// replacement. Built on golang.org/x/tools/go/analysis, so any driver can run it.
package migrate

import (
	"fmt"
	"go/ast"
	"go/types"
	"strconv"
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
}

func run(pass *analysis.Pass) (any, error) {
	for _, f := range pass.Files {
		if name, ok := legacyImport(f); ok {
			checkFile(pass, f, name)
		}
	}
	return nil, nil
}

// legacyImport returns the name under which f imports the legacy package.
func legacyImport(f *ast.File) (string, bool) {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == legacyPath {
			if imp.Name != nil {
				return imp.Name.Name, imp.Name.Name != "_"
			}
			return "adapters", true
		}
	}
	return "", false
}

func checkFile(pass *analysis.Pass, f *ast.File, pkgName string) {
	var renamed []*ast.SelectorExpr
	others := 0
	var sels []*ast.SelectorExpr
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			sels = append(sels, sel)
		}
		return true
	})
	for _, sel := range sels {
		if !isLegacy(pass, sel, pkgName) {
			continue
		}
		name := sel.Sel.Name
		if _, ok := renames[name]; ok {
			renamed = append(renamed, sel)
			continue
		}
		others++
		if repl, ok := reports[name]; ok {
			pass.Report(analysis.Diagnostic{Pos: sel.Pos(), End: sel.End(), Category: "adapters." + name,
				Message: fmt.Sprintf("adapters.%s is deprecated: use %s (docs/MIGRATION.md)", name, repl)})
		}
	}
	if len(renamed) == 0 {
		return
	}
	imports := importEdits(pass, f, others == 0)
	for i, sel := range renamed {
		to := renames[sel.Sel.Name]
		edits := []analysis.TextEdit{{Pos: sel.Pos(), End: sel.End(), NewText: []byte(dspyName(f) + "." + to)}}
		if i == 0 {
			edits = append(edits, imports...) // once per file: the fixes are applied together
		}
		pass.Report(analysis.Diagnostic{Pos: sel.Pos(), End: sel.End(), Category: "adapters." + sel.Sel.Name,
			Message:        fmt.Sprintf("adapters.%s is deprecated: use dspy.%s", sel.Sel.Name, to),
			SuggestedFixes: []analysis.SuggestedFix{{Message: "use dspy." + to, TextEdits: edits}}})
	}
}

// isLegacy reports whether sel is pkgName.X with pkgName the legacy package (not a local
// variable that shadows it).
func isLegacy(pass *analysis.Pass, sel *ast.SelectorExpr, pkgName string) bool {
	id, ok := sel.X.(*ast.Ident)
	if !ok || id.Name != pkgName {
		return false
	}
	pn, ok := pass.TypesInfo.Uses[id].(*types.PkgName)
	return ok && pn.Imported().Path() == legacyPath
}

// dspyName is how f refers to package dspy after the fix.
func dspyName(f *ast.File) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == dspyPath && imp.Name != nil {
			return imp.Name.Name
		}
	}
	return "dspy"
}

// importEdits makes package dspy available: the legacy import becomes dspy's when nothing else
// uses it; otherwise dspy's import is added beside it (go/format sorts the block).
func importEdits(pass *analysis.Pass, f *ast.File, replaceLegacy bool) []analysis.TextEdit {
	var legacy, dspy *ast.ImportSpec
	for _, imp := range f.Imports {
		switch p, _ := strconv.Unquote(imp.Path.Value); p {
		case legacyPath:
			legacy = imp
		case dspyPath:
			dspy = imp
		}
	}
	quoted := strconv.Quote(dspyPath)
	switch {
	case replaceLegacy && dspy == nil:
		return []analysis.TextEdit{{Pos: legacy.Pos(), End: legacy.End(), NewText: []byte(quoted)}}
	case replaceLegacy:
		return []analysis.TextEdit{{Pos: legacy.Pos(), End: legacy.End(), NewText: nil}}
	case dspy == nil:
		indent := "\n"
		if line := lineOf(pass, legacy); strings.HasPrefix(line, "\t") {
			indent = "\n\t"
		}
		return []analysis.TextEdit{{Pos: legacy.End(), End: legacy.End(), NewText: []byte(indent + quoted)}}
	}
	return nil
}

func lineOf(pass *analysis.Pass, n ast.Node) string {
	tf := pass.Fset.File(n.Pos())
	src, err := pass.ReadFile(tf.Name())
	if err != nil {
		return ""
	}
	start := tf.Offset(tf.LineStart(tf.Line(n.Pos())))
	end := start
	for end < len(src) && src[end] != '\n' {
		end++
	}
	return string(src[start:end])
}
