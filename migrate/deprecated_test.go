package migrate_test

import (
	"go/ast"
	"go/token"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"

	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/migrate"
)

// Every name of the real package adapters that carries a Deprecated note, by the rule of
// staticcheck's deprecated-facts analyzer (a doc paragraph starting "Deprecated: " on a
// declaration, a spec, a struct field or an interface method), is one the analyzer reports:
// a deprecated name added later and not taught to the analyzer fails here, instead of
// silently making `migrate status` count less than staticcheck's SA1019.
func TestAnalyzerKnowsEveryDeprecatedName(t *testing.T) {
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedSyntax | packages.NeedTypes, Dir: testenv.Root()}
	pkgs, err := packages.Load(cfg, "github.com/mlbridge/mlbridge/adapters")
	if err != nil || packages.PrintErrors(pkgs) > 0 {
		t.Fatalf("load adapters: %v", err)
	}
	var got []string
	note := func(name string, docs ...*ast.CommentGroup) {
		for _, doc := range docs {
			if doc == nil {
				continue
			}
			for _, part := range strings.Split(doc.Text(), "\n\n") {
				if strings.HasPrefix(part, "Deprecated: ") {
					got = append(got, name)
					return
				}
			}
		}
	}
	fields := func(owner string, list *ast.FieldList) {
		for _, fld := range list.List {
			for _, n := range fld.Names {
				note(owner+"."+n.Name, fld.Doc)
			}
		}
	}
	for _, f := range pkgs[0].Syntax {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				name := d.Name.Name
				if d.Recv != nil {
					recv := d.Recv.List[0].Type
					if s, ok := recv.(*ast.StarExpr); ok {
						recv = s.X
					}
					name = recv.(*ast.Ident).Name + "." + name
				}
				note(name, d.Doc)
			case *ast.GenDecl:
				if d.Tok == token.IMPORT {
					continue
				}
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.ValueSpec:
						for _, n := range s.Names {
							note(n.Name, d.Doc, s.Doc)
						}
					case *ast.TypeSpec:
						note(s.Name.Name, d.Doc, s.Doc)
						switch t := s.Type.(type) {
						case *ast.StructType:
							fields(s.Name.Name, t.Fields)
						case *ast.InterfaceType:
							fields(s.Name.Name, t.Methods)
						}
					}
				}
			}
		}
	}
	slices.Sort(got)
	got = slices.Compact(got)
	if want := migrate.Known(); !slices.Equal(got, want) {
		t.Errorf("deprecated in package adapters:\n%s\nknown to the analyzer:\n%s", strings.Join(got, " "), strings.Join(want, " "))
	}
}
