package migrate_test

import (
	"bytes"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/migrate"
)

// TestRunFindsTheSelectorsDot: in a file not in gofmt form, a comment holding a '.' between
// the legacy qualifier and its selector's dot (adapters /* v1.2 */ .DSPyBridge) is not taken
// for the dot: the rename leaves the comment and code that still parses (it wrote
// "return 2 */ . Bridge" before).
func TestRunFindsTheSelectorsDot(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a copy of testdata/legacyapp")
	}
	dir := testenv.LegacyApp(t)
	// a package of its own: its dot import must not meet the app's names
	if err := os.Mkdir(filepath.Join(dir, "versioned"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "versioned", "versioned.go")
	src := "package versioned\n\nimport (\n\t\"github.com/mlbridge/mlbridge/adapters\"\n\t. \"github.com/mlbridge/mlbridge/dspy\"\n)\n\n" +
		"var _ ProgramOption\n\nfunc versioned() string {\n\treturn adapters /* v1.2 */ .DSPyBridge\n}\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := migrate.Run(dir, "./...")
	if err != nil {
		t.Fatal(err)
	}
	got := res.Changed[file]
	if _, err := parser.ParseFile(token.NewFileSet(), file, got, 0); err != nil {
		t.Fatalf("versioned.go no longer parses: %v\n%s", err, got)
	}
	if !bytes.Contains(got, []byte("/* v1.2 */ Bridge")) || bytes.Contains(got, []byte("adapters")) {
		t.Errorf("versioned.go after the rename:\n%s", got)
	}
}
