package migrate_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/migrate"
)

// A file with CRLF line endings keeps them: the import line migrate adds ends in CRLF too.
func TestRunKeepsCRLFLineEndings(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a copy of testdata/legacyapp")
	}
	dir := testenv.LegacyApp(t)
	file := filepath.Join(dir, "crlf.go")
	src := "package legacyapp\r\n\r\nimport (\r\n\t\"context\"\r\n\r\n\t\"github.com/mlbridge/mlbridge/adapters\"\r\n)\r\n\r\n" +
		"func configure(ctx context.Context, p *adapters.PythonPort) error {\r\n\treturn p.ConfigureLM(ctx, adapters.LMConfig{})\r\n}\r\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := migrate.Run(dir, "./...")
	if err != nil {
		t.Fatal(err)
	}
	got := res.Changed[file]
	want := "\t\"github.com/mlbridge/mlbridge/adapters\"\r\n\t\"github.com/mlbridge/mlbridge/dspy\"\r\n)\r\n"
	if !bytes.Contains(got, []byte(want)) || bytes.Count(got, []byte("\n")) != bytes.Count(got, []byte("\r\n")) {
		t.Errorf("crlf.go after the fixes (%d LF, %d CRLF):\n%q", bytes.Count(got, []byte("\n")), bytes.Count(got, []byte("\r\n")), got)
	}
}
