package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge"
)

// A requirement declared twice (a variable listed twice in env, the bridge's own module also
// in packages) is one problem, printed once, and a fix shared by several problems once.
func TestDoctorPrintsEachProblemOnce(t *testing.T) {
	t.Setenv("MLBRIDGE_TEST_UNSET_VAR", "")
	path := filepath.Join(t.TempDir(), "mlbridge.yaml")
	body := "bridges:\n  needy:\n    bridge: no_such_module_xyz:Bridge\n" +
		"    packages: [no_such_module_xyz, other_missing_xyz, other_missing_xyz, mlbridge_worker]\n" +
		"    env: [MLBRIDGE_TEST_UNSET_VAR, MLBRIDGE_TEST_UNSET_VAR]\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "doctor", "--config", path)
	if !errors.Is(err, errProblems) || !strings.Contains(err.Error(), "3 problem(s)") {
		t.Fatalf("%v\n%s", err, out)
	}
	problems, fixes := map[string]int{}, map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if _, fix, ok := strings.Cut(line, "fix: "); ok {
			fixes[fix]++
		} else {
			problems[line]++
		}
	}
	for line, n := range problems {
		if n > 1 {
			t.Errorf("%q printed %d times", line, n)
		}
	}
	for fix, n := range fixes {
		if n > 1 {
			t.Errorf("fix %q printed %d times", fix, n)
		}
	}
	for _, name := range []string{"MLBRIDGE_TEST_UNSET_VAR", "no_such_module_xyz", "other_missing_xyz"} {
		n := 0
		for line := range problems {
			if strings.Contains(line, name) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d problem lines name %s", n, name)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
	out, _ = run(t, "doctor", "--config", path, "--json")
	var report map[string][]struct{ What string }
	if err := json.Unmarshal([]byte(out), &report); err != nil || len(report["needy"]) != 3 {
		t.Fatalf("JSON: %v %+v\n%s", err, report, out)
	}
}

// Without a configuration file doctor says what it needs and how to give it, and the error
// still matches ErrConfig and fs.ErrNotExist.
func TestDoctorWithoutConfigurationSaysWhatToDo(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "mlbridge.yaml")
	_, err := run(t, "doctor", "--config", missing)
	if !errors.Is(err, mlbridge.ErrConfig) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("got %v", err)
	}
}
