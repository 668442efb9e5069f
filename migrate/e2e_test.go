package migrate_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/migrate"
)

// The whole mechanical migration of testdata/legacyapp: go fix, then migrate. A dry run
// changes nothing; --apply rewrites; the app still vets and passes its own tests (a real
// worker); a second run finds nothing to rewrite.
func TestMigrateLegacyAppEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go fix, the analyzer and go test on a copy of testdata/legacyapp")
	}
	dir := testenv.LegacyApp(t)
	testenv.Go(t, dir, "fix", "./...")
	app := filepath.Join(dir, "app.go")
	before, _ := os.ReadFile(app)

	res, err := migrate.Run(dir, "./...")
	if err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile(app); !bytes.Equal(now, before) {
		t.Fatal("a dry run changed the file")
	}
	if !strings.Contains(res.Diff, "+\tvar opts []dspy.ProgramOption") || len(res.Changed) != 1 {
		t.Fatalf("diff:\n%s", res.Diff)
	}
	var reported []string
	for _, f := range res.Findings {
		if !f.Fixable {
			reported = append(reported, f.API)
		}
	}
	if strings.Join(reported, ",") != "adapters,adapters.PythonPoolV2,adapters.NewPythonPoolV2,adapters.Options" {
		t.Errorf("reported for a person: %v", reported)
	}

	if err := res.Write(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(app)
	for _, want := range []string{
		"a.pool.Client.ExecuteProgram(", "a.pool.Client.GetProgramInfo(", "pool.Client.ConfigureLM(",
		"pool.Client.CreateProgram(", "a.pool.Client.Adapter().Health(ctx)",
	} {
		if !bytes.Contains(after, []byte(want)) {
			t.Errorf("after --apply, app.go lacks %q:\n%s", want, after)
		}
	}
	if bytes.Contains(after, []byte("adapters.LMConfig")) || bytes.Contains(after, []byte("adapters.ProgramOption")) {
		t.Fatalf("aliases left after --apply:\n%s", after)
	}
	testenv.Go(t, dir, "vet", "./...")
	testenv.Go(t, dir, "test", "-count=1", "./...")

	again, err := migrate.Run(dir, "./...")
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Changed) != 0 || again.Diff != "" {
		t.Fatalf("not idempotent:\n%s", again.Diff)
	}
}
