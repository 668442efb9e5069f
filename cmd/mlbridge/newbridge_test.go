package main

import (
	"bytes"
	"go/format"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
)

// A name the generated code cannot use is refused before anything is written, saying why.
func TestNewBridgeRefusesNamesGoOrPythonCannotUse(t *testing.T) {
	dir := filepath.Join(testenv.LegacyApp(t), "b") // inside a module: only the name can fail
	for name, why := range map[string]string{
		"func":    "Go keyword",
		"range":   "Go keyword",
		"string":  "predeclared in Go",
		"nil":     "predeclared in Go",
		"main":    "importable Go package",
		"class":   "Python keyword",
		"lambda":  "Python keyword",
		"errors":  "generated Go test uses",
		"testing": "generated Go test uses",
		"c":       "generated Go test uses",
		"Greeter": "lower case",
		"my-lib":  "lower case",
		"2fa":     "lower case",
		"":        "lower case",
	} {
		_, err := run(t, "new-bridge", name, "--dir", dir)
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("new-bridge %q: %v, want an error saying %q", name, err, why)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused name wrote %s (%v)", dir, err)
	}
}

// In a module whose path sorts before github.com/mlbridge/mlbridge, the generated Go is still
// gofmt-clean (the test's imports are sorted), and go vet passes on it, test included.
func TestNewBridgeOutputIsGofmtCleanAndVets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go vet on a copy of testdata/legacyapp")
	}
	mod := testenv.LegacyApp(t) // module example.com/legacyapp
	dir := filepath.Join(mod, "acme")
	if _, err := run(t, "new-bridge", "acme", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	goFiles, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	if len(goFiles) != 2 {
		t.Fatalf("Go files: %v", goFiles)
	}
	for _, f := range goFiles {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if formatted, err := format.Source(src); err != nil || !bytes.Equal(formatted, src) {
			t.Errorf("%s is not gofmt-clean (%v):\n%s", filepath.Base(f), err, src)
		}
	}
	testenv.Go(t, mod, "vet", "./acme/")
}
