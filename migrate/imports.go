package migrate

import (
	"go/ast"
	"go/token"
	"go/types"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// dspyImport decides the name under which the rewritten sites in f refer to package dspy, and
// the import edits (per file) that make it available:
//   - an import of dspy that f already has serves, when its name reaches every site (no local
//     variable, parameter or package-level name shadows it there);
//   - one that some site cannot reach is renamed, with its uses (renameImport);
//   - otherwise the first free name of dspy, mldspy, mldspy2…: no import of f has it and it
//     resolves to nothing at every site (go/types scopes, LookupParent);
//   - the legacy import becomes dspy's when nothing else in f uses it (replaceLegacy), or is
//     deleted when an existing import of dspy serves.
func dspyImport(pass *analysis.Pass, f *ast.File, sites []ast.Expr, replaceLegacy bool) (string, []analysis.TextEdit) {
	legacy := importOf(f, legacyPath)
	var shadowed *ast.ImportSpec // an import of dspy that some site cannot reach
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p != dspyPath {
			continue
		}
		name := localName(pass, imp)
		if name == "_" || name == "." {
			continue
		}
		if !reaches(pass, name, sites, true) {
			shadowed = imp
			continue
		}
		if replaceLegacy {
			return name, removeImport(pass, f, legacy)
		}
		return name, nil
	}
	if shadowed != nil {
		return renameImport(pass, f, shadowed, sites, legacy, replaceLegacy)
	}
	name := freeName(pass, f, sites)
	spec := strconv.Quote(dspyPath)
	if name != "dspy" {
		spec = name + " " + spec
	}
	if replaceLegacy {
		return name, []analysis.TextEdit{{Pos: legacy.Pos(), End: legacy.End(), NewText: []byte(spec)}}
	}
	return name, addImport(pass, f, legacy, spec)
}

// renameImport gives f's import of dspy, which a local name shadows at some site, a name free
// at every site and at every use of the import, and renames those uses: a second import of
// the same package would compile, but linters flag it (staticcheck ST1019).
func renameImport(pass *analysis.Pass, f *ast.File, imp *ast.ImportSpec, sites []ast.Expr, legacy *ast.ImportSpec, replaceLegacy bool) (string, []analysis.TextEdit) {
	pn, _ := pass.TypesInfo.Implicits[imp].(*types.PkgName)
	if imp.Name != nil {
		pn, _ = pass.TypesInfo.Defs[imp.Name].(*types.PkgName)
	}
	var uses []*ast.Ident
	ast.Inspect(f, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && pn != nil && pass.TypesInfo.Uses[id] == pn {
			uses = append(uses, id)
		}
		return true
	})
	all := slices.Clone(sites)
	for _, id := range uses {
		all = append(all, id)
	}
	name := freeName(pass, f, all)
	edits := []analysis.TextEdit{{Pos: imp.Pos(), End: imp.End(), NewText: []byte(name + " " + strconv.Quote(dspyPath))}}
	for _, id := range uses {
		edits = append(edits, analysis.TextEdit{Pos: id.Pos(), End: id.End(), NewText: []byte(name)})
	}
	if replaceLegacy {
		edits = append(edits, removeImport(pass, f, legacy)...)
	}
	return name, edits
}

// freeName is the first of dspy, mldspy, mldspy2… that f's imports leave free and that
// resolves to nothing at every site.
func freeName(pass *analysis.Pass, f *ast.File, sites []ast.Expr) string {
	taken := map[string]bool{}
	for _, imp := range f.Imports {
		taken[localName(pass, imp)] = true
	}
	for i := 0; ; i++ {
		name := "dspy"
		switch {
		case i == 1:
			name = "mldspy"
		case i > 1:
			name = "mldspy" + strconv.Itoa(i)
		}
		if !taken[name] && reaches(pass, name, sites, false) {
			return name
		}
	}
}

// reaches says whether name, looked up at each site, is the import of dspy (existing) or
// nothing at all (!existing).
func reaches(pass *analysis.Pass, name string, sites []ast.Expr, existing bool) bool {
	for _, e := range sites {
		scope := pass.Pkg.Scope().Innermost(e.Pos())
		if scope == nil {
			return false
		}
		_, obj := scope.LookupParent(name, e.Pos())
		if !existing {
			if obj != nil {
				return false
			}
			continue
		}
		pn, ok := obj.(*types.PkgName)
		if !ok || pn.Imported().Path() != dspyPath {
			return false
		}
	}
	return true
}

// localName is the name an import declares in its file.
func localName(pass *analysis.Pass, imp *ast.ImportSpec) string {
	if imp.Name != nil {
		return imp.Name.Name
	}
	if pn, ok := pass.TypesInfo.Implicits[imp].(*types.PkgName); ok {
		return pn.Name()
	}
	p, _ := strconv.Unquote(imp.Path.Value)
	return path.Base(p)
}

func importOf(f *ast.File, want string) *ast.ImportSpec {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == want {
			return imp
		}
	}
	return nil
}

// declOf is the import declaration holding spec.
func declOf(f *ast.File, spec *ast.ImportSpec) *ast.GenDecl {
	for _, d := range f.Decls {
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.IMPORT {
			for _, s := range gd.Specs {
				if s == spec {
					return gd
				}
			}
		}
	}
	return nil
}

// addImport adds spec on a line of its own after the legacy import's line, so that a comment
// trailing the legacy import stays on it.
func addImport(pass *analysis.Pass, f *ast.File, legacy *ast.ImportSpec, spec string) []analysis.TextEdit {
	gd := declOf(f, legacy)
	tf := pass.Fset.File(legacy.Pos())
	if !gd.Lparen.IsValid() {
		eol := endOfLine(pass, gd.End())
		return []analysis.TextEdit{{Pos: eol, End: eol, NewText: []byte("\nimport " + spec)}}
	}
	if tf.Line(gd.Rparen) == tf.Line(legacy.Pos()) { // import ("a"; "adapters")
		return []analysis.TextEdit{{Pos: gd.Rparen, End: gd.Rparen, NewText: []byte("; " + spec)}}
	}
	eol := endOfLine(pass, legacy.End())
	return []analysis.TextEdit{{Pos: eol, End: eol, NewText: []byte("\n\t" + spec)}}
}

// removeImport deletes the legacy import with its line (and its trailing comment).
func removeImport(pass *analysis.Pass, f *ast.File, legacy *ast.ImportSpec) []analysis.TextEdit {
	gd := declOf(f, legacy)
	from, to := legacy.Pos(), legacy.End()
	if len(gd.Specs) == 1 {
		from, to = gd.Pos(), gd.End()
	}
	tf := pass.Fset.File(from)
	start, eol := tf.LineStart(tf.Line(from)), endOfLine(pass, to)
	if rest := strings.TrimSpace(srcText(pass, to, eol)); onlySpace(pass, start, from) && (rest == "" || strings.HasPrefix(rest, "//")) {
		from, to = start, eol
		if tf.Offset(eol) < tf.Size() {
			to++ // the newline
		}
	}
	return []analysis.TextEdit{{Pos: from, End: to, NewText: nil}}
}

// endOfLine is the position of the newline ending pos's line (or the end of the file).
func endOfLine(pass *analysis.Pass, pos token.Pos) token.Pos {
	tf := pass.Fset.File(pos)
	src, _ := pass.ReadFile(tf.Name())
	off := tf.Offset(pos)
	for off < len(src) && src[off] != '\n' {
		off++
	}
	return tf.Pos(off)
}

func onlySpace(pass *analysis.Pass, from, to token.Pos) bool {
	for _, c := range srcText(pass, from, to) {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// srcText is the source between two positions of one file, comments included.
func srcText(pass *analysis.Pass, from, to token.Pos) string {
	tf := pass.Fset.File(from)
	src, err := pass.ReadFile(tf.Name())
	if err != nil {
		return ""
	}
	return string(src[tf.Offset(from):tf.Offset(to)])
}
