package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/adapters"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/migrate"
)

// A service half-way through its migration: the legacy PythonPoolV2 and the current dspy
// client share one pool, which the service exposes with mlbridge.NodeHandler. `migrate status
// --node` reads it and adds the runtime figures to the static scan.
func TestMigrateStatusReadsARunningNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a DSPy worker and loads a copy of testdata/legacyapp")
	}
	ctx := context.Background()
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: mlbridge.Config{Bridge: dspy.Bridge, Python: testenv.Python(t)}, Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	legacy, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Adapter: p, Phase: adapters.PhaseOff})
	if err != nil {
		t.Fatal(err)
	}
	current := dspy.New(p)
	answers := make([]map[string]any, 8)
	for i := range answers {
		answers[i] = map[string]any{"answer": "Paris"}
	}
	if err := current.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: answers}); err != nil {
		t.Fatal(err)
	}
	id, err := current.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	q := map[string]any{"question": "capital of France?"}
	// Legacy: three executions and one that fails (no input). Current: two executions.
	for range 3 {
		if _, err := legacy.ExecuteProgram(ctx, id, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := legacy.ExecuteProgram(ctx, id, map[string]any{}); err == nil {
		t.Fatal("an execution without its input succeeded")
	}
	for range 2 {
		if _, err := current.ExecuteProgram(ctx, id, q); err != nil {
			t.Fatal(err)
		}
	}
	node := httptest.NewServer(mlbridge.NodeHandler(mlbridge.Named("dspy", p)))
	defer node.Close()

	dir := testenv.LegacyApp(t)
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	out, err := run(t, "migrate", "status", "--json", "-C", dir, "--node", node.URL)
	var st struct {
		Total   int             `json:"total"`
		Runtime migrate.Runtime `json:"runtime"`
	}
	if err != nil || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if st.Total == 0 {
		t.Error("the static scan found no legacy use in the legacy app")
	}
	b := st.Runtime.Bridges["dspy"]
	// the current path also made CreateProgram's build check (describe)
	if got := b.DeprecatedCalls["adapters.PythonPoolV2"]; got != (mlbridge.CallCounts{Calls: 4, Errors: 1}) {
		t.Errorf("deprecated calls: %+v", b.DeprecatedCalls)
	}
	if got := b.Paths["current"]; got != (mlbridge.CallCounts{Calls: 3}) {
		t.Errorf("current path: %+v", got)
	}
	if b.NewAPIShare != 3.0/7.0 || st.Runtime.Total.NewAPIShare != b.NewAPIShare {
		t.Errorf("new API share %v (total %v), want 3/7", b.NewAPIShare, st.Runtime.Total.NewAPIShare)
	}
	if b.Ops == 0 || b.HandlerModes["execute"] != mlbridge.KindSync {
		t.Errorf("handler modes: %v", b.HandlerModes)
	}

	out, err = run(t, "migrate", "status", "-C", dir, "--node", node.URL)
	if err != nil || !strings.Contains(out, "current API 42.9% of calls") || !strings.Contains(out, "adapters.PythonPoolV2 4 (1 failed)") {
		t.Fatalf("status text: %v\n%s", err, out)
	}
	if _, err := run(t, "migrate", "status", "-C", dir, "--node", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "no mlbridge node") {
		t.Fatalf("unreachable node: %v", err)
	}
}

// status says how many legacy uses staticcheck's SA1019 reports too, and why the others are
// invisible to it; a file the build leaves out is counted apart (migrate's
// TestSA1019MatchesStaticcheck runs staticcheck itself).
func TestMigrateStatusCountsWhatSA1019Sees(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a copy of testdata/legacyapp")
	}
	dir, _, _ := migrateApp(t)
	for name, src := range map[string]string{
		"dot.go": `package legacyapp

import . "github.com/mlbridge/mlbridge/adapters"

// Old is the old constructor.
//
// Deprecated: use New.
func Old() Options { return Options{Workers: 1} }
`,
		"tagged.go": "//go:build integration\n\npackage legacyapp\n\nimport _ \"github.com/mlbridge/mlbridge/adapters\"\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := run(t, "migrate", "status", "--json", "-C", dir)
	var st struct {
		Total      int `json:"total"`
		SA1019     int `json:"sa1019"`
		NotInBuild int `json:"not_in_build"`
	}
	// app.go: 13 uses SA1019 reports; dot.go: its import (reported) and Options twice
	// (dot-imported); tagged.go: not in this build.
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st != (struct {
		Total      int `json:"total"`
		SA1019     int `json:"sa1019"`
		NotInBuild int `json:"not_in_build"`
	}{Total: 17, SA1019: 14, NotInBuild: 1}) {
		t.Fatalf("status --json: %v %+v\n%s", err, st, out)
	}
	out, err = run(t, "migrate", "status", "-C", dir)
	if err != nil || !strings.Contains(out, "16 (staticcheck SA1019 sees 14; 2 dot-imported, 0 inside functions marked Deprecated, 0 embedded types, 0 silenced by //lint:ignore, 0 not deprecated)") ||
		!regexp.MustCompile(`files not in this build +1 \(their uses are not counted; mlbridge migrate says, per file, how to include it: --tags, GOOS/GOARCH or naming the file\)`).MatchString(out) {
		t.Fatalf("status: %v\n%s", err, out)
	}
}
