package adapters_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/migrate"
)

// `go fix ./...` on an application written against the legacy API leaves it compiling and
// passing its own tests (which run a real worker), and leaves the legacy calls to `mlbridge
// migrate`: only adapters.DSPyBridge is marked //go:fix inline. The options were marked
// before; go fix's inliner dropped the comments inside their arguments and added a second
// import declaration, so migrate renames them instead.
func TestGoFixLeavesTheLegacyAppToMigrate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go fix and go test on a copy of testdata/legacyapp")
	}
	dir := testenv.LegacyApp(t)
	testenv.Go(t, dir, "fix", "./...")
	after, _ := os.ReadFile(filepath.Join(dir, "app.go"))
	for _, want := range []string{"adapters.WithModule(", "adapters.WithInstructions(", "a.pool.ExecuteProgram("} {
		if !strings.Contains(string(after), want) {
			t.Errorf("after go fix, app.go lacks %q:\n%s", want, after)
		}
	}
	testenv.Go(t, dir, "vet", "./...")
	testenv.Go(t, dir, "test", "-count=1", "./...")
	// A second run finds nothing more to do.
	testenv.Go(t, dir, "fix", "./...")
	again, _ := os.ReadFile(filepath.Join(dir, "app.go"))
	if !bytes.Equal(after, again) {
		t.Errorf("go fix is not idempotent:\n%s", again)
	}
}

// The call shapes of the issue "Migration that survives real code": `go fix ./...` then
// `mlbridge migrate --apply ./...` leaves code that compiles and vets, with every legacy method
// call rewritten to p.Client, whatever its arguments; a second run of both changes nothing.
// Before the method directives were dropped, go fix added an unused import of package mlbridge
// where it inlined GetStats, wrote nothing for a file with a map[string]interface{} argument,
// and left p.CreateProgram(ctx, sig, adapters.WithModule("X")) as it was.
func TestGoFixThenMigrateEveryCallShape(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go fix, the analyzer and go vet on a temporary module")
	}
	dir := testenv.LegacyApp(t)
	for _, e := range []string{"app.go", "app_test.go"} {
		os.Remove(filepath.Join(dir, e))
	}
	files := map[string]string{
		"stats/stats.go": `package stats

import "github.com/mlbridge/mlbridge/adapters"

func Workers(p *adapters.PythonPoolV2) int { return len(p.GetStats().Workers) }
`,
		"anymap/anymap.go": `package anymap

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters"
)

func Run(ctx context.Context, p *adapters.PythonPoolV2, id string) error {
	if _, err := p.ExecuteProgram(ctx, id, map[string]interface{}{"q": "x"}); err != nil {
		return err
	}
	_, err := p.ListPrograms(ctx)
	return err
}
`,
		"options/options.go": `package options

import (
	"context"
	"strings"

	"github.com/mlbridge/mlbridge/adapters"
)

type Embedding struct{ *adapters.PythonPort }

func Create(ctx context.Context, p *adapters.PythonPoolV2, e Embedding, sig string) (string, error) {
	if err := p.HealthCheck(ctx); err != nil {
		return "", err
	}
	_, _ = e.GetProgramInfo(ctx, strings.TrimSpace(sig) /* the id */)
	return p.CreateProgram(ctx, sig, adapters.WithModule("X"))
}
`,
	}
	for name, src := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Go(t, dir, "vet", "./...")
	read := func() map[string]string {
		out := map[string]string{}
		for name := range files {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			out[name] = string(b)
		}
		return out
	}
	migrateApply := func() bool {
		res, err := migrate.Run(dir, "./...")
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Write(); err != nil {
			t.Fatal(err)
		}
		return len(res.Changed) > 0
	}

	testenv.Go(t, dir, "fix", "./...")
	testenv.Go(t, dir, "vet", "./...") // go fix alone leaves code that compiles
	migrateApply()
	testenv.Go(t, dir, "vet", "./...")
	after := read()
	for name, want := range map[string][]string{
		"stats/stats.go":     {"len(p.Client.Adapter().Stats().Workers)"},
		"anymap/anymap.go":   {`p.Client.ExecuteProgram(ctx, id, map[string]any{"q": "x"})`, "p.Client.ListPrograms(ctx)"},
		"options/options.go": {"p.Client.Adapter().Health(ctx)", `e.PythonPort.Client.GetProgramInfo(ctx, strings.TrimSpace(sig) /* the id */)`, `p.Client.CreateProgram(ctx, sig, dspy.WithModule("X"))`},
	} {
		for _, w := range want {
			if !strings.Contains(after[name], w) {
				t.Errorf("after go fix and migrate --apply, %s lacks %q:\n%s", name, w, after[name])
			}
		}
	}
	// A second run of both changes nothing.
	testenv.Go(t, dir, "fix", "./...")
	if migrateApply() {
		t.Error("a second mlbridge migrate --apply still changes files")
	}
	for name, src := range read() {
		if src != after[name] {
			t.Errorf("the second run changed %s:\n%s", name, src)
		}
	}
}
