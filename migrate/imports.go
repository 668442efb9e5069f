package migrate

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// dspyImport decides the name under which the rewritten sites in f refer to package dspy, and
// the import edits (per file) that make it available:
//   - an import of dspy that f already has serves, when its name reaches every site (no local
//     variable, parameter or package-level name shadows it there); a dot import of dspy serves
//     with the bare names ("" is returned) when each reaches dspy's object at its site;
//   - one that some site cannot reach is renamed, with its uses (renameImport);
//   - otherwise the first free name of dspy, mldspy, mldspy2…: no import of f has it, no file
//     of the package in any build declares it, and it resolves to nothing at every site;
//   - the first legacy import the rewrites leave unused (freed, nil if none) becomes dspy's
//     import when one is needed, and is deleted otherwise (the caller deletes the other ones).
func dspyImport(pass *analysis.Pass, f *ast.File, sites []ast.Expr, freed *ast.ImportSpec) (string, []analysis.TextEdit) {
	var drop []analysis.TextEdit
	if freed != nil {
		drop = removeImport(pass, f, freed)
	}
	var shadowed *ast.ImportSpec // an import of dspy that some site cannot reach
	dot := false                 // a dot import of dspy whose names reach every site
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p != dspyPath {
			continue
		}
		name := localName(pass, imp)
		if name == "." {
			dot = dot || reachesDot(pass, sites)
			continue
		}
		if name == "_" {
			continue
		}
		if !reaches(pass, name, sites, true) {
			shadowed = imp
			continue
		}
		return name, drop
	}
	if dot { // a half-migrated file: the bare names, not a second import of dspy (ST1019)
		return "", drop
	}
	if shadowed != nil {
		name, edits := renameImport(pass, f, shadowed, sites)
		return name, append(edits, drop...)
	}
	name := freeName(pass, f, sites)
	spec := strconv.Quote(dspyPath)
	if name != "dspy" {
		spec = name + " " + spec
	}
	if freed != nil {
		return name, []analysis.TextEdit{{Pos: freed.Pos(), End: freed.End(), NewText: []byte(spec)}}
	}
	return name, addImport(pass, f, importOf(f, legacyPath), spec)
}

// reachesDot says whether, at each site, the bare name of its replacement (LMConfig for
// adapters.LMConfig) is package dspy's, through f's dot import of it.
func reachesDot(pass *analysis.Pass, sites []ast.Expr) bool {
	for _, e := range sites {
		scope := pass.Pkg.Scope().Innermost(e.Pos())
		if scope == nil {
			return false
		}
		_, obj := scope.LookupParent(renames[legacyName(e)], e.Pos())
		if obj == nil || obj.Pkg() == nil || obj.Pkg().Path() != dspyPath {
			return false
		}
	}
	return true
}

// legacyImports are f's imports of the legacy package, blank ones left out (they are kept for
// the package's init, which the rewrites do not touch).
func legacyImports(pass *analysis.Pass, f *ast.File) []*ast.ImportSpec {
	var out []*ast.ImportSpec
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == legacyPath && localName(pass, imp) != "_" {
			out = append(out, imp)
		}
	}
	return out
}

// specOf is the import of f through which e (adapters.X, or dot-imported X) names the legacy
// package.
func specOf(pass *analysis.Pass, f *ast.File, e ast.Expr) *ast.ImportSpec {
	var pn types.Object
	if sel, ok := e.(*ast.SelectorExpr); ok {
		if id, ok := sel.X.(*ast.Ident); ok {
			pn = pass.TypesInfo.Uses[id]
		}
	}
	for _, imp := range legacyImports(pass, f) {
		switch {
		case pn == nil && localName(pass, imp) == ".":
			return imp
		case pn != nil && (pass.TypesInfo.Implicits[imp] == pn || imp.Name != nil && pass.TypesInfo.Defs[imp.Name] == pn):
			return imp
		}
	}
	return nil
}

// renameImport gives f's import of dspy, which a local name shadows at some site, a name free
// at every site and at every use of the import, and renames those uses: a second import of
// the same package would compile, but linters flag it (staticcheck ST1019).
func renameImport(pass *analysis.Pass, f *ast.File, imp *ast.ImportSpec, sites []ast.Expr) (string, []analysis.TextEdit) {
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
	return name, edits
}

// freeName is the first of dspy, mldspy, mldspy2… that f's imports leave free, that no file
// of the package declares at package level in any build (test files, files behind other tags:
// an import of that name would clash with it there), and that resolves to nothing at every site.
func freeName(pass *analysis.Pass, f *ast.File, sites []ast.Expr) string {
	taken := packageNames(pass, f)
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

// packageNames are the package-level names declared by the .go files in f's directory that
// belong to f's package (by package clause), whichever build includes them.
func packageNames(pass *analysis.Pass, f *ast.File) map[string]bool {
	names := map[string]bool{}
	dir := filepath.Dir(pass.Fset.File(f.Pos()).Name())
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	fset := token.NewFileSet() // not pass.Fset: these files are read, not analyzed
	for _, name := range files {
		other, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil || other.Name.Name != f.Name.Name {
			continue
		}
		for _, d := range other.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					names[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch spec := spec.(type) {
					case *ast.ValueSpec:
						for _, n := range spec.Names {
							names[n.Name] = true
						}
					case *ast.TypeSpec:
						names[spec.Name.Name] = true
					}
				}
			}
		}
	}
	return names
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
		eol, nl := lineBreak(pass, gd.End())
		return []analysis.TextEdit{{Pos: eol, End: eol, NewText: []byte(nl + "import " + spec)}}
	}
	if tf.Line(gd.Rparen) == tf.Line(legacy.Pos()) { // import ("a"; "adapters")
		return []analysis.TextEdit{{Pos: gd.Rparen, End: gd.Rparen, NewText: []byte("; " + spec)}}
	}
	eol, nl := lineBreak(pass, legacy.End())
	return []analysis.TextEdit{{Pos: eol, End: eol, NewText: []byte(nl + "\t" + spec)}}
}

// lineBreak is where pos's line breaks, and the file's line break there: "\r\n" in a file with
// CRLF line endings (an added line ends like its neighbours), else "\n".
func lineBreak(pass *analysis.Pass, pos token.Pos) (token.Pos, string) {
	eol := endOfLine(pass, pos)
	if eol > pos && srcText(pass, eol-1, eol) == "\r" {
		return eol - 1, "\r\n"
	}
	return eol, "\n"
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
