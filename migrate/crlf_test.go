package migrate_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/migrate"
)

// migrateOneFile adds src to a copy of testdata/legacyapp as rel (its directory made if
// needed), runs migrate on the copy, and returns what it rewrote the file to.
func migrateOneFile(t *testing.T, rel, src string) []byte {
	t.Helper()
	dir := testenv.LegacyApp(t)
	file := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := migrate.Run(dir, "./...")
	if err != nil {
		t.Fatal(err)
	}
	return res.Changed[file]
}

// A file with CRLF line endings keeps them: the import line migrate adds ends in CRLF too.
func TestRunKeepsCRLFLineEndings(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a copy of testdata/legacyapp")
	}
	src := "package legacyapp\r\n\r\nimport (\r\n\t\"context\"\r\n\r\n\t\"github.com/mlbridge/mlbridge/adapters\"\r\n)\r\n\r\n" +
		"func configure(ctx context.Context, p *adapters.PythonPort) error {\r\n\treturn p.ConfigureLM(ctx, adapters.LMConfig{})\r\n}\r\n"
	got := migrateOneFile(t, "crlf.go", src)
	want := "\t\"github.com/mlbridge/mlbridge/adapters\"\r\n\t\"github.com/mlbridge/mlbridge/dspy\"\r\n)\r\n"
	if !bytes.Contains(got, []byte(want)) || bytes.Count(got, []byte("\n")) != bytes.Count(got, []byte("\r\n")) {
		t.Errorf("crlf.go after the fixes (%d LF, %d CRLF):\n%q", bytes.Count(got, []byte("\n")), bytes.Count(got, []byte("\r\n")), got)
	}
}
