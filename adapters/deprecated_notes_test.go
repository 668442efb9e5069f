package adapters_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// migrateMaps reads the names `mlbridge migrate` renames and reports from its analyzer's
// source (package migrate's renames and reports maps), so that the notes below are checked
// against what the tool does rather than against a copy.
func migrateMaps(t *testing.T) (renames, reports map[string]bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "migrate", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					lit, ok := (ast.Expr)(nil), false
					if i < len(vs.Values) {
						lit = vs.Values[i]
					}
					cl, ok := lit.(*ast.CompositeLit)
					if !ok || (n.Name != "renames" && n.Name != "reports") {
						continue
					}
					keys := map[string]bool{}
					for _, elt := range cl.Elts {
						if kv, ok := elt.(*ast.KeyValueExpr); ok {
							if bl, ok := kv.Key.(*ast.BasicLit); ok {
								k, _ := strconv.Unquote(bl.Value)
								keys[k] = true
							}
						}
					}
					found[n.Name] = keys
				}
			}
		}
	}
	if found["renames"] == nil || found["reports"] == nil {
		t.Fatal("package migrate has no renames and reports maps any more: teach this test where the analyzer keeps what it rewrites and reports")
	}
	return found["renames"], found["reports"]
}

// A deprecated symbol of package adapters, as its source declares it.
type deprecated struct {
	name   string // X, or Recv.X for a method
	method bool
	inline bool // has //go:fix inline
	note   string
}

func deprecatedSymbols(t *testing.T) []deprecated {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var out []deprecated
	add := func(name string, method bool, doc *ast.CommentGroup) {
		if doc == nil || !ast.IsExported(name[strings.LastIndex(name, ".")+1:]) {
			return
		}
		// The convention: a paragraph that begins with "Deprecated: ".
		var note string
		for _, para := range strings.Split(doc.Text(), "\n\n") {
			if strings.HasPrefix(para, "Deprecated: ") {
				note = strings.Join(strings.Fields(para), " ")
			}
		}
		if note == "" {
			return
		}
		d := deprecated{name: name, method: method, note: note}
		for _, c := range doc.List {
			d.inline = d.inline || c.Text == "//go:fix inline"
		}
		out = append(out, d)
	}
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, decl := range f.Decls {
				switch decl := decl.(type) {
				case *ast.FuncDecl:
					if decl.Recv == nil {
						add(decl.Name.Name, false, decl.Doc)
						continue
					}
					recv := decl.Recv.List[0].Type
					if star, ok := recv.(*ast.StarExpr); ok {
						recv = star.X
					}
					add(recv.(*ast.Ident).Name+"."+decl.Name.Name, true, decl.Doc)
				case *ast.GenDecl:
					for _, spec := range decl.Specs {
						doc := decl.Doc
						var names []string
						switch spec := spec.(type) {
						case *ast.TypeSpec:
							names = []string{spec.Name.Name}
							if spec.Doc != nil {
								doc = spec.Doc
							}
						case *ast.ValueSpec:
							for _, n := range spec.Names {
								names = append(names, n.Name)
							}
							if spec.Doc != nil {
								doc = spec.Doc
							}
						}
						for _, n := range names {
							add(n, false, doc)
						}
					}
				}
			}
		}
	}
	return out
}

// Every Deprecated note names the tool that handles the symbol and says what it does, as the
// tools really do it: "`go fix` inlines" exactly when the symbol has //go:fix inline; for a
// package-level symbol, "`mlbridge migrate` renames" exactly when the analyzer renames it,
// "`mlbridge migrate` reports" exactly when it reports it, "does not" otherwise. Neither
// tool is said to "rewrite the call" of a symbol it only reports.
func TestDeprecatedNotesNameTheirTool(t *testing.T) {
	renames, reports := migrateMaps(t)
	syms := deprecatedSymbols(t)
	if len(syms) < 20 {
		t.Fatalf("found %d deprecated symbols in package adapters; the parsing is broken", len(syms))
	}
	for _, d := range syms {
		n := d.note
		if affirmative := strings.ReplaceAll(n, "nor `go fix` rewrites", ""); strings.Contains(affirmative, "`mlbridge migrate` rewrites") ||
			strings.Contains(affirmative, "`go fix` rewrites") {
			t.Errorf("%s: %q: say which tool inlines, renames or reports it, not that it rewrites", d.name, n)
		}
		goFix := strings.Contains(n, "`go fix` inlines")
		if d.inline != goFix {
			t.Errorf("%s: //go:fix inline is %v but the note %s that `go fix` inlines it: %q", d.name, d.inline, says(goFix), n)
		}
		if !d.inline && !strings.Contains(n, "not marked for `go fix`") && !strings.Contains(n, "nor `go fix` rewrites") {
			t.Errorf("%s: no //go:fix inline, and the note does not say `go fix` leaves it: %q", d.name, n)
		}
		if d.method {
			continue // migrate's analyzer matches package-level names (adapters.X)
		}
		for _, c := range []struct {
			claim string
			is    bool
		}{
			{"`mlbridge migrate` renames", renames[d.name]},
			{"`mlbridge migrate` reports", reports[d.name]},
		} {
			if strings.Contains(n, c.claim) != c.is {
				t.Errorf("%s: the analyzer's %q is %v but the note %s it: %q", d.name, c.claim, c.is, says(!c.is), n)
			}
		}
		if !renames[d.name] && !reports[d.name] && !strings.Contains(n, "`mlbridge migrate` does not") {
			t.Errorf("%s: `mlbridge migrate` neither renames nor reports it, and the note does not say so: %q", d.name, n)
		}
	}
}

func says(b bool) string {
	if b {
		return "says"
	}
	return "does not say"
}
