package migrate_test

import (
	"bytes"
	"go/parser"
	"go/token"
	"testing"
)

// TestRunFindsTheSelectorsDot: in a file not in gofmt form, a comment holding a '.' between
// the legacy qualifier and its selector's dot (adapters /* v1.2 */ .DSPyBridge) is not taken
// for the dot: the rename leaves the comment and code that still parses (it wrote
// "return 2 */ . Bridge" before).
func TestRunFindsTheSelectorsDot(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a copy of testdata/legacyapp")
	}
	// a package of its own: its dot import must not meet the app's names
	src := "package versioned\n\nimport (\n\t\"github.com/mlbridge/mlbridge/adapters\"\n\t. \"github.com/mlbridge/mlbridge/dspy\"\n)\n\n" +
		"var _ ProgramOption\n\nfunc versioned() string {\n\treturn adapters /* v1.2 */ .DSPyBridge\n}\n"
	got := migrateOneFile(t, "versioned/versioned.go", src)
	if _, err := parser.ParseFile(token.NewFileSet(), "versioned.go", got, 0); err != nil {
		t.Fatalf("versioned.go no longer parses: %v\n%s", err, got)
	}
	if !bytes.Contains(got, []byte("/* v1.2 */ Bridge")) || bytes.Contains(got, []byte("adapters")) {
		t.Errorf("versioned.go after the rename:\n%s", got)
	}
}
