package migrate

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/token"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/rogpeppe/go-internal/diff"
	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/checker"
	"golang.org/x/tools/go/packages"
)

// Finding is one use of the legacy API.
type Finding struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	API     string `json:"api"` // adapters.NewPythonPoolV2, ...
	Message string `json:"message"`
	Fixable bool   `json:"fixable"`
	// SA1019 says whether staticcheck's SA1019 check reports the same use; NotSA1019 says
	// why not (DotImported, EmbeddedType, InDeprecatedFunc, LintIgnored, NotDeprecated, NotInBuild).
	SA1019    bool   `json:"sa1019"`
	NotSA1019 string `json:"not_sa1019,omitempty"`
}

// Result is what a run found and what its fixes change, file by file.
type Result struct {
	Findings []Finding
	// Changed maps a file to its content after the fixes (formatted), for files that change.
	Changed map[string][]byte
	// Diff is the unified diff of Changed against the files on disk.
	Diff string
}

// SA1019 is the number of findings that staticcheck's SA1019 check reports too: the same
// uses, each once (a file in a package and its test variant counts once).
func (r *Result) SA1019() int {
	n := 0
	for _, f := range r.Findings {
		if f.SA1019 {
			n++
		}
	}
	return n
}

// Run analyzes the packages matching patterns (go list syntax) in dir.
func Run(dir string, patterns ...string) (*Result, error) {
	return Config{Dir: dir}.Run(patterns...)
}

// Config says how Run loads the packages.
type Config struct {
	Dir string
	// Tags are build tags (go build -tags): files behind other tags are not analyzed, only
	// reported (one finding per such file that imports the legacy package).
	Tags []string
}

// Run analyzes the packages matching patterns (go list syntax) in c.Dir.
func (c Config) Run(patterns ...string) (*Result, error) {
	cfg := &packages.Config{Mode: packages.LoadAllSyntax, Dir: c.Dir, Tests: true}
	if len(c.Tags) > 0 {
		cfg.BuildFlags = []string{"-tags=" + strings.Join(c.Tags, ",")}
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return nil, err
	}
	if n := packages.PrintErrors(pkgs); n > 0 {
		return nil, fmt.Errorf("%d package(s) do not load", n)
	}
	graph, err := checker.Analyze([]*analysis.Analyzer{Analyzer}, pkgs, nil)
	if err != nil {
		return nil, err
	}
	res := &Result{Changed: map[string][]byte{}}
	edits := map[string][]analysis.TextEdit{}
	seen := map[string]bool{} // a file is in a package and its test variant: count it once
	for act := range graph.All() {
		if act.Analyzer != Analyzer || !act.IsRoot {
			continue
		}
		u, _ := act.Result.(*unseen)
		generated := map[string]bool{} // generated files are reported, never edited: regenerate them
		for _, f := range act.Package.Syntax {
			if ast.IsGenerated(f) {
				generated[act.Package.Fset.File(f.Pos()).Name()] = true
			}
		}
		for _, d := range act.Diagnostics {
			// the file the edits apply to, not where a //line directive points (goyacc's
			// grammar.y, a template): that file may not exist, and is not what was analyzed
			pos := act.Package.Fset.PositionFor(d.Pos, false)
			key := fmt.Sprintf("%s:%d:%d:%s", pos.Filename, pos.Line, pos.Column, d.Message)
			if seen[key] {
				continue
			}
			seen[key] = true
			why := u.why(d.Pos)
			fixes, msg := d.SuggestedFixes, d.Message
			if generated[pos.Filename] && len(fixes) > 0 {
				fixes, msg = nil, msg+" (a generated file: regenerate it; migrate does not edit it)"
			}
			res.Findings = append(res.Findings, Finding{File: pos.Filename, Line: pos.Line, API: d.Category,
				Message: msg, Fixable: len(fixes) > 0, SA1019: why == "", NotSA1019: why})
			for _, fix := range fixes {
				for _, e := range fix.TextEdits {
					edits[pos.Filename] = append(edits[pos.Filename], offsets(act.Package.Fset, e))
				}
			}
		}
	}
	sort.Slice(res.Findings, func(i, j int) bool {
		a, b := res.Findings[i], res.Findings[j]
		return a.File < b.File || a.File == b.File && a.Line < b.Line
	})
	var out bytes.Buffer
	files := make([]string, 0, len(edits))
	for f := range edits {
		files = append(files, f)
	}
	slices.Sort(files)
	for _, file := range files {
		before, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		after, err := apply(before, edits[file])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if !bytes.Equal(before, after) {
			res.Changed[file] = after
			out.WriteString(unifiedDiff(file, before, after))
		}
	}
	res.Diff = out.String()
	return res, nil
}

// unifiedDiff is the unified diff (3 lines of context) that turns before into after,
// labelled "file (old)" and "file (new)"; empty when they are equal. It is the go command's
// own diff (gofmt -d); go-udiff, used before, numbered the new side of every hunk after
// one that joined nearby edits wrongly (golang/go#81453, also in x/tools' internal/diff).
func unifiedDiff(file string, before, after []byte) string {
	return string(diff.Diff(file+" (old)", before, file+" (new)", after))
}

// offsets turns token positions into byte offsets (stored in Pos/End as plain ints).
func offsets(fset *token.FileSet, e analysis.TextEdit) analysis.TextEdit {
	tf := fset.File(e.Pos)
	return analysis.TextEdit{Pos: token.Pos(tf.Offset(e.Pos)), End: token.Pos(tf.Offset(e.End)), NewText: e.NewText}
}

// apply applies edits (byte offsets; identical duplicates once), formatting the result when
// src was formatted.
func apply(src []byte, edits []analysis.TextEdit) ([]byte, error) {
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].Pos < edits[j].Pos })
	var out []byte
	last := 0
	for i, e := range edits {
		if i > 0 && e.Pos == edits[i-1].Pos && e.End == edits[i-1].End && bytes.Equal(e.NewText, edits[i-1].NewText) {
			continue
		}
		if int(e.Pos) < last {
			return nil, fmt.Errorf("overlapping edits at offset %d", e.Pos)
		}
		out = append(out, src[last:e.Pos]...)
		out = append(out, e.NewText...)
		last = int(e.End)
	}
	out = append(out, src[last:]...)
	// A file in gofmt's form stays in it (a longer selector realigns comments); any other file
	// keeps its own layout, changed only by the edits.
	if formatted, err := format.Source(src); err == nil && bytes.Equal(formatted, src) {
		return format.Source(out)
	}
	return out, nil
}

// Write applies a Result's changes to disk.
func (r *Result) Write() error {
	for file, data := range r.Changed {
		info, err := os.Stat(file)
		if err != nil {
			return err
		}
		if err := os.WriteFile(file, data, info.Mode()); err != nil {
			return err
		}
	}
	return nil
}
