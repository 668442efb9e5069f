package mlbridge_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
)

// TestREADMEGoGetSteps runs the README's "In your own Go module" commands, as written, in a
// fresh module that requires mlbridge (replaced by this tree; GOPROXY=off, the module cache
// holds the dependencies). The command that runs the CLI gets `--help` in place of its
// `python setup` arguments, which would install packages. Its first version ran the CLI with
// `go run github.com/mlbridge/mlbridge/cmd/mlbridge` after `go get github.com/mlbridge/mlbridge`,
// which fails: "missing go.sum entry" for the CLI's own dependencies (cobra, nats...).
func TestREADMEGoGetSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI in a module of its own")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	readme, err := os.ReadFile(filepath.Join(testenv.Root(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "**In your own Go module**")
	if ok {
		_, block, ok = strings.Cut(block, "```sh\n")
	}
	if ok {
		block, _, ok = strings.Cut(block, "```")
	}
	if !ok {
		t.Fatal(`README.md has no "In your own Go module" sh block`)
	}
	// The CLI's dependencies into the module cache (a no-op when there), so that the steps
	// below, with GOPROXY=off, find them.
	prime := exec.Command(goTool, "list", "-deps", "./cmd/mlbridge")
	prime.Dir = testenv.Root()
	if out, err := prime.CombinedOutput(); err != nil {
		t.Fatalf("go list -deps ./cmd/mlbridge: %v\n%s", err, out)
	}
	app := t.TempDir()
	writeFile(t, filepath.Join(app, "go.mod"), "module example.com/adopter\n\ngo 1.26.0\n\n"+
		"replace github.com/mlbridge/mlbridge => "+testenv.Root()+"\n")
	env := append(withoutEnv(os.Environ(), "GOFLAGS", "GOWORK", "GOPROXY"), "GOFLAGS=", "GOWORK=off", "GOPROXY=off")
	ranCLI := false
	for line := range strings.Lines(block) {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "go" {
			continue // export ...
		}
		if i := strings.Index(line, " python setup"); i >= 0 {
			fields = append(strings.Fields(line[:i]), "python", "setup", "--help")
			ranCLI = true
		}
		cmd := exec.Command(goTool, fields[1:]...)
		cmd.Dir, cmd.Env = app, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("README step %q: %v\n%s", strings.Join(fields, " "), err, out.String())
		}
		if ranCLI && !strings.Contains(out.String(), "mlbridge python setup") {
			t.Fatalf("%q printed no help:\n%s", strings.Join(fields, " "), out.String())
		}
	}
	if !ranCLI {
		t.Fatal("no README step runs `mlbridge python setup`")
	}
}
