package migrate_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/migrate"
)

// corpusTags are the tag sets testdata/legacycorpus builds with: the default build, and
// legacyextra, which compiles tagged/on.go.
var corpusTags = []string{"", "legacyextra"}

// The whole migration of a legacy codebase that uses the legacy API every way the tools must
// handle (testdata/legacycorpus): its tests and transcript against real workers before, after
// go fix, and after mlbridge migrate --apply (with every tag set); the transcript never
// changes; a second migrate changes nothing; every remaining use is reported with where it is
// and what replaces it, and the uses marked SA1019 are exactly those staticcheck's SA1019
// reports (compare), after go fix and after migrate.
func TestMigrateLegacyCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go fix, the analyzer, and the corpus's tests and transcript against real workers three times")
	}
	dir := testenv.LegacyCorpus(t)
	golden := map[string]string{
		"":            readFile(t, filepath.Join(testenv.Root(), "testdata", "legacycorpus", "transcript.golden")),
		"legacyextra": "tagged: on -> \"positive\" ok\n",
	}
	check := func(stage string) {
		t.Helper()
		for _, tags := range corpusTags {
			testenv.Go(t, dir, "build", "-tags="+tags, "./...")
			testenv.Go(t, dir, "vet", "-tags="+tags, "./...")
			pkgs, steps := "./...", []string{}
			if tags != "" { // only package tagged differs
				pkgs, steps = "./tagged/", []string{"tagged"}
			}
			testenv.Go(t, dir, "test", "-count=1", "-tags="+tags, pkgs)
			got := transcript(t, dir, tags, steps...)
			if got != golden[tags] {
				t.Fatalf("%s (tags %q): the transcript changed:\n%s\nwant:\n%s", stage, tags, got, golden[tags])
			}
		}
	}
	check("before")

	before := snapshot(t, dir)
	for _, tags := range corpusTags {
		testenv.Go(t, dir, "fix", "-tags="+tags, "./...")
	}
	if changed := changedFiles(before, snapshot(t, dir)); len(changed) == 0 {
		t.Fatal("go fix changed nothing: the corpus no longer exercises it")
	} else {
		t.Logf("go fix changed %v", changed)
	}
	check("after go fix")

	var findings []migrate.Finding
	for _, tags := range corpusTags {
		res := compare(t, dir, "migrate --apply (tags "+tags+")", tagList(tags)...)
		if len(res.Changed) == 0 {
			t.Fatalf("migrate (tags %q) had nothing to rewrite", tags)
		}
		if err := res.Write(); err != nil {
			t.Fatal(err)
		}
	}
	check("after migrate --apply")
	for _, tags := range corpusTags {
		res := compare(t, dir, "a second migrate (tags "+tags+")", tagList(tags)...)
		if len(res.Changed) != 0 {
			t.Fatalf("a second migrate (tags %q) would change:\n%s", tags, res.Diff)
		}
		findings = append(findings, res.Findings...)
	}
	checkRemaining(t, dir, findings)
}

// checkRemaining checks what is left after both tools: no legacy method call, every class of
// remaining use reported with a replacement.
func checkRemaining(t *testing.T, dir string, findings []migrate.Finding) {
	t.Helper()
	var lines []string
	for _, f := range findings {
		rel, _ := filepath.Rel(dir, f.File)
		lines = append(lines, fmt.Sprintf("%s:%d: %s", rel, f.Line, f.Message))
		if f.Fixable {
			t.Errorf("a fix is left after --apply: %s:%d %s", rel, f.Line, f.Message)
		}
	}
	report := strings.Join(lines, "\n")
	for _, want := range []struct{ file, line, message string }{
		// a method value and a method expression, with the text that replaces them
		{"kinds/kinds.go", "run: pool.ExecuteProgram", "pool.ExecuteProgram uses deprecated adapters.PythonPoolV2.ExecuteProgram: replace with pool.Client.ExecuteProgram"},
		{"kinds/kinds.go", "run: pool.ExecuteProgram", "(*adapters.PythonPoolV2).GetProgramInfo uses deprecated adapters.PythonPoolV2.GetProgramInfo: replace with func(p *adapters.PythonPoolV2, ctx context.Context, id string) ("},
		// a type-switch case, an embedded field, a struct field, a parameter
		{"kinds/kinds.go", "case *adapters.PythonPort:", "adapters.PythonPort is deprecated"},
		{"qa/qa.go", "\t*legacy.PythonPoolV2", "adapters.PythonPoolV2 is deprecated"},
		{"flags/flags.go", "\tpool *adapters.PythonPoolV2", "adapters.PythonPoolV2 is deprecated"},
		{"kinds/kinds.go", "func Describe(", "adapters.PythonPort is deprecated"},
		// dot-imported names
		{"dotted/dotted.go", "pool, err := NewPythonPoolV2(", "adapters.NewPythonPoolV2 is deprecated"},
		// the package-level default pool
		{"defaults/health.go", "adapters.GetStats()", "adapters.GetStats is deprecated: use a.Stats()"},
		{"defaults/defaults.go", "adapters.SetDefault(pool)", "adapters.SetDefault is deprecated: use mlbridge.Registry.SetDefault"},
		// the file behind a build tag: analyzed with -tags, listed as left out without
		{"tagged/on.go", "adapters.NewPythonPoolV2(", "adapters.NewPythonPoolV2 is deprecated"},
		{"tagged/on.go", "\"github.com/mlbridge/mlbridge/adapters\"", "on.go imports deprecated adapters but is not in this build (//go:build legacyextra)"},
	} {
		at := fmt.Sprintf("%s:%d: %s", want.file, lineOf(t, filepath.Join(dir, want.file), want.line), want.message)
		if !strings.Contains(report, at) {
			t.Errorf("the report lacks %q", at)
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "is deprecated: call ") { // a method call rewrite left over
			t.Errorf("a legacy method call remains: %s", l)
		}
	}
	if t.Failed() {
		t.Logf("remaining uses:\n%s", report)
	}
}

// lineOf is the number of the first line of file that contains text.
func lineOf(t *testing.T, file, text string) int {
	t.Helper()
	for i, l := range strings.Split(readFile(t, file), "\n") {
		if strings.Contains(l, text) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line with %q", file, text)
	return 0
}

// tagList is tags as migrate.Config.Tags and testenv.SA1019 take them.
func tagList(tags string) []string {
	if tags == "" {
		return nil
	}
	return []string{tags}
}

// transcript runs the corpus's cmd/transcript (its standard output only: the legacy API logs
// its deprecation on standard error, and the migration rightly changes that).
func transcript(t *testing.T, dir, tags string, steps ...string) string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"run", "-tags=" + tags, "./cmd/transcript"}, steps...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod", "MLBRIDGE_PYTHON="+testenv.Python(t))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("transcript (tags %q): %v\n%s", tags, err, stderr.Bytes())
	}
	return string(out)
}

// snapshot is every file of dir and its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files[path] = readFile(t, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func changedFiles(before, after map[string]string) []string {
	var changed []string
	for f, s := range after {
		if before[f] != s {
			changed = append(changed, filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f))
		}
	}
	slices.Sort(changed)
	return changed
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// migrateRun runs the analyzer on dir with tags ("" for none).
func migrateRun(t *testing.T, dir, tags string) *migrate.Result {
	t.Helper()
	res, err := migrate.Config{Dir: dir, Tags: tagList(tags)}.Run("./...")
	if err != nil {
		t.Fatalf("migrate (tags %q): %v", tags, err)
	}
	return res
}
