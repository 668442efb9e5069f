package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// --dry-run, the spelling the seed's docs used, is the default mode said out loud: the diff,
// nothing written. With --apply it is an error, before anything is analyzed.
func TestMigrateDryRunFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a copy of testdata/legacyapp")
	}
	dir, app, before := migrateApp(t)
	out, err := run(t, "migrate", "--dry-run", "-C", dir)
	if err != nil || !strings.Contains(out, "+++ "+app+" (new)") || !strings.Contains(out, "dry run: 1 file(s)") {
		t.Fatalf("--dry-run: %v\n%s", err, out)
	}
	if now, _ := os.ReadFile(app); !bytes.Equal(now, before) {
		t.Fatal("--dry-run changed app.go")
	}
	out, err = run(t, "migrate", "--dry-run", "--apply", "-C", dir)
	if err == nil || !strings.Contains(err.Error(), "dry-run") || !strings.Contains(err.Error(), "apply") {
		t.Fatalf("--dry-run --apply: %v\n%s", err, out)
	}
	if now, _ := os.ReadFile(app); !bytes.Equal(now, before) {
		t.Fatal("--dry-run --apply changed app.go")
	}
}

func TestMigrateHelpNamesDryRun(t *testing.T) {
	out, err := run(t, "migrate", "--help")
	if err != nil || !strings.Contains(out, "--dry-run") || !strings.Contains(out, "--apply") {
		t.Fatalf("migrate --help: %v\n%s", err, out)
	}
}
