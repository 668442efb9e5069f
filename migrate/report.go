package migrate

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/build/constraint"
	"go/parser"
	"go/types"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// methodRepl is what a legacy method runs, on the legacy value: its replacement.
var methodRepl = map[string]string{
	"CreateProgram":  "Client.CreateProgram",
	"ExecuteProgram": "Client.ExecuteProgram",
	"GetProgramInfo": "Client.GetProgramInfo",
	"ListPrograms":   "Client.ListPrograms",
	"DeleteProgram":  "Client.DeleteProgram",
	"ConfigureLM":    "Client.ConfigureLM",
	"HealthCheck":    "Client.Adapter().Health",
	"GetStats":       "Client.Adapter().Stats",
}

// isLegacyMethod says whether fn is a deprecated method of PythonPort or PythonPoolV2.
func isLegacyMethod(fn *types.Func) bool {
	if fn.Pkg() == nil || fn.Pkg().Path() != legacyPath || methodRepl[fn.Name()] == "" {
		return false
	}
	switch legacyType(fn) {
	case "PythonPort", "PythonPoolV2":
		return true
	}
	return false
}

// legacyType is the name of the type declaring method fn.
func legacyType(fn *types.Func) string {
	recv := fn.Type().(*types.Signature).Recv()
	if recv == nil {
		return ""
	}
	t := recv.Type()
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	if n, ok := t.(*types.Named); ok {
		return n.Obj().Name()
	}
	return ""
}

// rewriteCall rewrites the legacy method call whose callee is sel (p.X in p.X(args…)) to the
// call the method makes, p.Client.X(args…) (through the embedded fields a promoted call goes
// through: mp.PythonPoolV2.Client.X): only the selector's name is replaced, so the receiver and
// the arguments, comments included, stay as written, and the result calls a method of
// *dspy.Client, which a second run does not match. Where the path goes through a field this
// package cannot name (unexported, another package's), the call goes through the promoted
// Client (pub.Client.X); it declines (false) when no selector from this package reaches it.
func rewriteCall(pass *analysis.Pass, sel *ast.SelectorExpr, s *types.Selection, fn *types.Func) bool {
	if s.Kind() != types.MethodVal {
		return false
	}
	path, ok := clientPath(pass, s)
	if !ok {
		return false
	}
	repl := path + methodRepl[fn.Name()]
	api := "adapters." + legacyType(fn) + "." + fn.Name()
	pass.Report(analysis.Diagnostic{Pos: sel.Sel.Pos(), End: sel.Sel.End(), Category: api,
		Message: fmt.Sprintf("%s is deprecated: call %s.%s", api, srcText(pass, sel.X.Pos(), sel.X.End()), repl),
		SuggestedFixes: []analysis.SuggestedFix{{Message: "call " + repl,
			TextEdits: []analysis.TextEdit{{Pos: sel.Sel.Pos(), End: sel.Sel.End(), NewText: []byte(repl)}}}}})
	return true
}

// clientPath is the path from the selection's receiver to the legacy value whose Client the
// replacement calls, with a trailing dot: the embedded fields by name (embeddedPath) when
// pass.Pkg can name each of them, else "" when the selector x.Client reaches that legacy
// value's Client by promotion (an exported field promoted through an unexported embedded
// one is selectable from any package), else false.
func clientPath(pass *analysis.Pass, s *types.Selection) (string, bool) {
	if path, ok := fieldPath(pass, s); ok {
		return path, true
	}
	obj, index, _ := types.LookupFieldOrMethod(s.Recv(), true, pass.Pkg, "Client")
	v, ok := obj.(*types.Var)
	if !ok || !v.IsField() || v.Pkg() == nil || v.Pkg().Path() != legacyPath {
		return "", false
	}
	via := s.Index()[:len(s.Index())-1]
	if len(index) != len(via)+1 || !slices.Equal(index[:len(via)], via) {
		return "", false // a Client of another embedded legacy value, or none
	}
	return "", true
}

// fieldPath is embeddedPath, and whether every field on it can be named from pass.Pkg.
func fieldPath(pass *analysis.Pass, s *types.Selection) (string, bool) {
	t := s.Recv()
	index := s.Index()
	for _, i := range index[:len(index)-1] {
		if p, ok := t.Underlying().(*types.Pointer); ok {
			t = p.Elem()
		}
		st, ok := t.Underlying().(*types.Struct)
		if !ok {
			return "", false
		}
		fld := st.Field(i)
		if !fld.Exported() && fld.Pkg() != pass.Pkg {
			return "", false
		}
		t = fld.Type()
	}
	return embeddedPath(s), true
}

// reportMethod reports a selection of a legacy method that is left after go fix: a method
// value (f := pool.ExecuteProgram), a method expression ((*adapters.PythonPoolV2).GetProgramInfo),
// or a call promoted through a type that embeds a legacy type (mp.ExecuteProgram(…)), with the
// text that replaces the selection.
func reportMethod(pass *analysis.Pass, f *ast.File, sel *ast.SelectorExpr, s *types.Selection, fn *types.Func) {
	api := "adapters." + legacyType(fn) + "." + fn.Name()
	path, ok := clientPath(pass, s)
	if !ok {
		pass.Report(analysis.Diagnostic{Pos: sel.Pos(), End: sel.End(), Category: api,
			Message: fmt.Sprintf("%s uses deprecated %s: no selector from this package reaches the embedded legacy value's Client (an unexported field of another package, and Client is not promoted): replace it in the package that declares the field",
				srcText(pass, sel.Pos(), sel.End()), api)})
		return
	}
	via := path + methodRepl[fn.Name()]
	var repl string
	switch s.Kind() {
	case types.MethodVal:
		repl = srcText(pass, sel.X.Pos(), sel.X.End()) + "." + via
	case types.MethodExpr:
		repl = methodFunc(fn, types.TypeString(s.Recv(), qualifier(pass, f)), via, qualifier(pass, f))
	default:
		return
	}
	pass.Report(analysis.Diagnostic{Pos: sel.Pos(), End: sel.End(), Category: api,
		Message: fmt.Sprintf("%s uses deprecated %s: replace with %s", srcText(pass, sel.Pos(), sel.End()), api, repl)})
}

// embeddedPath names the embedded fields a promoted selection goes through ("PythonPoolV2."),
// so that the replacement does not depend on promotion.
func embeddedPath(s *types.Selection) string {
	var b strings.Builder
	t := s.Recv()
	index := s.Index()
	for _, i := range index[:len(index)-1] {
		if p, ok := t.Underlying().(*types.Pointer); ok {
			t = p.Elem()
		}
		st, ok := t.Underlying().(*types.Struct)
		if !ok {
			return ""
		}
		fld := st.Field(i)
		b.WriteString(fld.Name() + ".")
		t = fld.Type()
	}
	return b.String()
}

// unalias is t without the legacy aliases (adapters.ProgramInfo is dspy.ProgramInfo), at the
// top and in a slice's elements: the shapes the legacy methods' signatures have.
func unalias(t types.Type) types.Type {
	if s, ok := t.(*types.Slice); ok {
		return types.NewSlice(types.Unalias(s.Elem()))
	}
	return types.Unalias(t)
}

// methodFunc is a function literal with the method expression's signature that calls the
// replacement on its receiver.
func methodFunc(fn *types.Func, recv, via string, qual types.Qualifier) string {
	sig := fn.Type().(*types.Signature)
	params := []string{"p " + recv}
	var args []string
	for i := 0; i < sig.Params().Len(); i++ {
		v := sig.Params().At(i)
		name := v.Name()
		if name == "" || name == "_" || name == "p" {
			name = fmt.Sprintf("a%d", i)
		}
		typ := types.TypeString(unalias(v.Type()), qual)
		arg := name
		if sig.Variadic() && i == sig.Params().Len()-1 {
			typ = "..." + types.TypeString(types.Unalias(v.Type().(*types.Slice).Elem()), qual)
			arg += "..."
		}
		params = append(params, name+" "+typ)
		args = append(args, arg)
	}
	var results []string
	for i := 0; i < sig.Results().Len(); i++ {
		results = append(results, types.TypeString(unalias(sig.Results().At(i).Type()), qual))
	}
	res, ret := "", ""
	switch len(results) {
	case 0:
	case 1:
		res, ret = " "+results[0], "return "
	default:
		res, ret = " ("+strings.Join(results, ", ")+")", "return "
	}
	return fmt.Sprintf("func(%s)%s { %sp.%s(%s) }", strings.Join(params, ", "), res, ret, via, strings.Join(args, ", "))
}

// qualifier prints a package as f refers to it (package dspy, when f does not import it, as
// the free name migrate would import it under).
func qualifier(pass *analysis.Pass, f *ast.File) types.Qualifier {
	return func(p *types.Package) string {
		if p == pass.Pkg {
			return ""
		}
		for _, imp := range f.Imports {
			if path := strings.Trim(imp.Path.Value, "`\""); path == p.Path() {
				switch name := localName(pass, imp); name {
				case ".":
					return ""
				case "_":
				default:
					return name
				}
			}
		}
		if p.Path() == dspyPath { // not imported yet: the name migrate would import it under
			return freeName(pass, f, nil)
		}
		return p.Name()
	}
}

// reportImports reports each import of the legacy package in f, as SA1019 does (the package
// itself is deprecated). fixes holds, for an import the rewrites leave unused, the edits that
// replace it with dspy's import or delete it; any other import a person removes last.
func reportImports(pass *analysis.Pass, f *ast.File, fixes map[*ast.ImportSpec][]analysis.TextEdit) {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p != legacyPath {
			continue
		}
		d := analysis.Diagnostic{Pos: imp.Path.Pos(), End: imp.Path.End(), Category: "adapters",
			Message: "package adapters is deprecated: replace the uses below (docs/MIGRATION.md), then remove the import"}
		if localName(pass, imp) == "_" {
			d.Message = "package adapters is deprecated: this blank import keeps its init; remove it with the last legacy use"
		}
		if fix := fixes[imp]; len(fix) > 0 {
			msg := "import the dspy package instead"
			if fix[0].NewText == nil {
				msg = "remove the import"
			}
			d.Message = "package adapters is deprecated and no use is left after the rewrites: " + msg
			d.SuggestedFixes = []analysis.SuggestedFix{{Message: msg, TextEdits: fix}}
		}
		pass.Report(d)
	}
}

// reportIgnoredFiles reports the files of the package that this build leaves out (build tags,
// GOOS/GOARCH) and that import the legacy package: the analyzer cannot see their uses.
func reportIgnoredFiles(pass *analysis.Pass, u *unseen) {
	for _, name := range pass.IgnoredFiles {
		if !strings.HasSuffix(name, ".go") {
			continue
		}
		f, err := parser.ParseFile(pass.Fset, name, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			continue
		}
		imp := importOf(f, legacyPath)
		if imp == nil {
			continue
		}
		why, how := "", "run mlbridge migrate --tags with tags that include it"
		for _, g := range f.Comments {
			for _, c := range g.List {
				if c.Pos() < f.Package && strings.HasPrefix(c.Text, "//go:build ") {
					why = c.Text
				}
			}
		}
		if f.Name.Name != pass.Pkg.Name() || mentionsIgnore(why) {
			// a generator (//go:build ignore, often package main): no tag set builds it with
			// its package (and -tags ignore breaks the standard library's packages), but the
			// go command builds a file named on the command line whatever its constraint
			how = "name it on the command line, which analyzes it whatever its //go:build line: mlbridge migrate " + name
		} else if excludedByName(name) { // tags cannot select it: the go command's environment does
			why = strings.TrimPrefix(why+"; ", "; ") + "its file name's GOOS/GOARCH"
			how = "run mlbridge migrate with GOOS/GOARCH set as its file name says (GOOS=<os> mlbridge migrate ./...)"
			if strings.HasPrefix(why, "//go:build") {
				how += ", and --tags if its //go:build line needs them"
			}
		}
		u.at[imp.Pos()] = NotInBuild
		pass.Report(analysis.Diagnostic{Pos: imp.Pos(), End: imp.End(), Category: "adapters",
			Message: fmt.Sprintf("%s imports deprecated adapters but is not in this build (%s): its uses are not analyzed; %s",
				filepath.Base(name), why, how)})
	}
}

// excludedByName says whether the file name's _GOOS/_GOARCH suffixes leave the file out of
// the build for the go command's GOOS/GOARCH, whatever its //go:build line says.
func excludedByName(path string) bool {
	ctxt := build.Default                                 // GOOS/GOARCH from the environment, as go list has them
	ctxt.OpenFile = func(string) (io.ReadCloser, error) { // the name alone: no //go:build line
		return io.NopCloser(strings.NewReader("package p\n")), nil
	}
	ok, err := ctxt.MatchFile(filepath.Dir(path), filepath.Base(path))
	return err == nil && !ok
}

// mentionsIgnore says whether the //go:build line line uses the tag ignore, the convention
// for files that are never part of their directory's package (go run gen.go).
func mentionsIgnore(line string) bool {
	expr, err := constraint.Parse(line)
	if err != nil {
		return false
	}
	// negated: under a '!', where "ignore" means the opposite (//go:build !ignore is a file
	// of every ordinary build, not a generator)
	var walk func(e constraint.Expr, negated bool) bool
	walk = func(e constraint.Expr, negated bool) bool {
		switch e := e.(type) {
		case *constraint.TagExpr:
			return e.Tag == "ignore" && !negated
		case *constraint.NotExpr:
			return walk(e.X, !negated)
		case *constraint.AndExpr:
			return walk(e.X, negated) || walk(e.Y, negated)
		case *constraint.OrExpr:
			return walk(e.X, negated) || walk(e.Y, negated)
		}
		return false
	}
	return walk(expr, false)
}
