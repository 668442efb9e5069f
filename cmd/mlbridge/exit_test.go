package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
)

// mainEnv makes the test binary run main() instead of the tests: runMain execs it so a test
// sees what a user sees, stderr and exit code included.
const mainEnv = "MLBRIDGE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runMain runs `mlbridge args...` as a process and returns its stdout, stderr and exit code.
func runMain(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append(args, "--python", testenv.Python(t))...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// An error is printed once, behind one "mlbridge: ", though the library's errors carry that
// prefix themselves, at the start or inside a wrapped error.
func TestErrorsPrintOnePrefix(t *testing.T) {
	invalid := filepath.Join(t.TempDir(), "invalid.yaml")
	if err := os.WriteFile(invalid, []byte("bridges:\n  echo:\n    bridge: mlbridge_worker.echo:EchoBridge\n    workerz: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"call", "nope"},                             // mlbridge: nope: unknown_op: ...
		{"doctor", "--config", invalid},              // <file>: mlbridge: invalid registry configuration: ...
		{"--bridge", "no_such_mod:X", "call", "add"}, // mlbridge: handshake failed: mlbridge: hello: ...
	} {
		_, stderr, code := runMain(t, args...)
		msg := errorOutput(stderr)
		if code != 1 || !strings.HasPrefix(msg, "mlbridge: ") || strings.Count(msg, "mlbridge:") != 1 {
			t.Errorf("mlbridge %s: exit %d, error %q", strings.Join(args, " "), code, msg)
		}
	}
}

// errorOutput is the error main printed: stderr from the last line that starts with
// "mlbridge: " (log records before it start with "time=").
func errorOutput(stderr string) string {
	if i := strings.LastIndex("\n"+stderr, "\nmlbridge: "); i >= 0 {
		return stderr[i:]
	}
	return stderr
}

// A bench whose calls fail exits 1 after printing its report, and says why on stderr: here
// every call fails, the bridge having no noop op.
func TestBenchWithFailedCallsExitsNonZero(t *testing.T) {
	stdout, stderr, code := runMain(t, "bench", "--scenario", "noop", "--bridge", "mlbridge_worker.frameworks.sklearn_bridge:SklearnBridge",
		"--concurrency", "2", "--duration", "400ms", "--rounds", "1", "--json")
	var rep struct {
		Scenario string `json:"scenario"`
		Calls    int64  `json:"calls"`
		Errors   int64  `json:"errors"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Errors == 0 || rep.Errors != rep.Calls {
		t.Fatalf("report %+v (%v):\n%s", rep, err, stdout)
	}
	if code != 1 || !strings.Contains(stderr, "mlbridge: bench failed: scenario noop:") || !strings.Contains(stderr, "calls failed") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

// A command that only groups others exits 1 on an argument that names none of them (cobra
// printed the group's help and exited 0, so a script's typo passed), and still prints its
// help and exits 0 when called alone.
func TestUnknownSubcommandFails(t *testing.T) {
	for _, args := range [][]string{{"store", "chek", "--path", "defs.db"}, {"python", "setp"}, {"completion", "tcsh"}} {
		stdout, stderr, code := runMain(t, args...)
		want := fmt.Sprintf("mlbridge: unknown command %q for \"mlbridge %s\"", args[1], args[0])
		if code != 1 || !strings.HasPrefix(errorOutput(stderr), want) || stdout != "" {
			t.Errorf("mlbridge %s: exit %d, stdout %q, stderr %q; want exit 1 and %q", strings.Join(args, " "), code, stdout, stderr, want)
		}
	}
	if _, stderr, _ := runMain(t, "store", "chek", "--path", "defs.db"); !strings.Contains(stderr, "did you mean check?") {
		t.Errorf("no suggestion for a near miss: %q", stderr)
	}
	for _, group := range []string{"store", "python"} {
		stdout, stderr, code := runMain(t, group)
		if code != 0 || !strings.Contains(stdout, "Available Commands:") || stderr != "" {
			t.Errorf("mlbridge %s: exit %d, stdout %q, stderr %q; want its help and exit 0", group, code, stdout, stderr)
		}
	}
}
