package migrate

import (
	"go/ast"
	"go/token"
	"path/filepath"
	"strings"
)

// Why staticcheck's SA1019 (honnef.co/go/tools v0.8.2) does not report a use the analyzer
// reports: the values of Finding.NotSA1019. TestSA1019MatchesStaticcheck runs staticcheck
// to hold the two counts together.
const (
	// DotImported: SA1019 looks at selectors (adapters.X, p.X) only, never at bare names.
	DotImported = "dot-imported"
	// InDeprecatedFunc: SA1019 lets a function marked Deprecated use deprecated names. Its
	// notion of "inside" is the last function declaration of the file that starts before the
	// use, so declarations after a deprecated function (up to the next function) count too.
	InDeprecatedFunc = "in-deprecated-func"
	// EmbeddedType: a legacy type embedded in a struct (struct{ *adapters.PythonPort }); SA1019
	// asks go/types for the object of the name, which there is the field, not the type.
	EmbeddedType = "embedded-type"
	// LintIgnored: staticcheck's //lint:file-ignore SA1019 silences it, or //lint:ignore SA1019
	// (which covers the line where the node the directive is attached to starts).
	LintIgnored = "lint-ignored"
	// NotDeprecated: a name of the legacy package that is not itself deprecated (ErrDeprecated,
	// the Phase constants): it goes with the package, but SA1019 reports deprecated names only.
	NotDeprecated = "not-deprecated"
	// NotInBuild: the file is left out of this build (tags, GOOS/GOARCH); neither tool sees it.
	NotInBuild = "not-in-build"
)

// unseen is the analyzer's result: why SA1019 does not report the diagnostic at a position.
type unseen struct {
	at    map[token.Pos]string
	spans []span // stretches of a file: in a function marked Deprecated, lines lint:ignore'd
}

type span struct {
	from, to token.Pos
	why      string
}

func newUnseen() *unseen { return &unseen{at: map[token.Pos]string{}} }

// why is the reason SA1019 does not report the diagnostic at pos, or "" when it does.
func (u *unseen) why(pos token.Pos) string {
	if u == nil {
		return ""
	}
	if r := u.at[pos]; r != "" {
		return r
	}
	for _, s := range u.spans {
		if s.from <= pos && pos < s.to {
			return s.why
		}
	}
	return ""
}

// addDeprecatedFuncs records the spans of f that SA1019 attributes to a function marked
// Deprecated: from such a function to the next function declaration, or the end of the file
// (staticcheck sets its current function at each FuncDecl and resets it only per file).
func (u *unseen) addDeprecatedFuncs(f *ast.File) {
	var open *span
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok {
			continue
		}
		if open != nil {
			open.to = fd.Pos()
			u.spans = append(u.spans, *open)
			open = nil
		}
		if deprecatedNote(fd.Doc) {
			open = &span{from: fd.Pos(), why: InDeprecatedFunc}
		}
	}
	if open != nil {
		open.to = f.FileEnd
		u.spans = append(u.spans, *open)
	}
}

// deprecatedNote says whether doc has a paragraph starting "Deprecated: ", the rule of
// staticcheck's deprecated-facts analyzer (and of go doc).
func deprecatedNote(doc *ast.CommentGroup) bool {
	if doc == nil {
		return false
	}
	for _, part := range strings.Split(doc.Text(), "\n\n") {
		if strings.HasPrefix(part, "Deprecated: ") {
			return true
		}
	}
	return false
}

// addLintIgnores records what staticcheck's //lint:ignore and //lint:file-ignore directives
// for SA1019 silence in f: the line where the node a directive's comment belongs to
// (ast.CommentMap) starts, or the whole file. A directive needs a reason after the checks.
func (u *unseen) addLintIgnores(fset *token.FileSet, f *ast.File) {
	tf := fset.File(f.FileStart)
	for node, groups := range ast.NewCommentMap(fset, f, f.Comments) {
		for _, g := range groups {
			for _, c := range g.List {
				text, ok := strings.CutPrefix(c.Text, "//lint:")
				if !ok {
					continue
				}
				fields := strings.Split(text, " ")
				if len(fields) < 3 || !silencesSA1019(fields[1]) {
					continue
				}
				switch fields[0] {
				case "file-ignore":
					u.spans = append(u.spans, span{f.FileStart, f.FileEnd + 1, LintIgnored})
				case "ignore":
					line := tf.Line(node.Pos())
					to := f.FileEnd + 1
					if line < tf.LineCount() {
						to = tf.LineStart(line + 1)
					}
					u.spans = append(u.spans, span{tf.LineStart(line), to, LintIgnored})
				}
			}
		}
	}
}

// silencesSA1019 says whether a directive's checks (comma-separated, case-insensitive
// patterns) match SA1019.
func silencesSA1019(checks string) bool {
	for _, c := range strings.Split(checks, ",") {
		if ok, _ := filepath.Match(strings.ToLower(c), "sa1019"); ok {
			return true
		}
	}
	return false
}
