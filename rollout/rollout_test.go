package rollout_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/adapters"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/rollout"
)

func TestEnvProviderPerSite(t *testing.T) {
	if err := openfeature.SetProviderAndWait(rollout.EnvProvider{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sw := rollout.Switch{}
	t.Setenv("MLBRIDGE_USE_NEW_API", "false")
	t.Setenv("MLBRIDGE_USE_NEW_API_BILLING_SUMMARIZE", "true")
	if !sw.UseNew(ctx, "billing.summarize") || sw.UseNew(ctx, "search") {
		t.Fatal("per-site override not honoured")
	}
	t.Setenv("MLBRIDGE_USE_NEW_API", "on")
	if !sw.UseNew(ctx, "search") {
		t.Fatal("module-wide flag not honoured")
	}
	t.Setenv("MLBRIDGE_USE_NEW_API", "garbage")
	if sw.UseNew(ctx, "search") {
		t.Fatal("an unreadable value must mean legacy")
	}
}

// Pattern 2 end to end: the flag flips mid-run between the legacy pool and the new client on
// one shared pool, programs survive the flips, and flipping back is the rollback.
func TestFlagFlipMidRun(t *testing.T) {
	ctx := context.Background()
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: mlbridge.Config{Bridge: dspy.Bridge, Python: testenv.Python(t)}, Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var legacyLog bytes.Buffer // every legacy call logs one warning: that is how the test sees the path
	legacy, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Adapter: p, Phase: adapters.PhaseWarn,
		Logger: slog.New(slog.NewTextHandler(&legacyLog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	next := dspy.New(p)
	answers := make([]map[string]any, 10)
	for i := range answers {
		answers[i] = map[string]any{"answer": "Paris"}
	}
	if err := next.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: answers}); err != nil {
		t.Fatal(err)
	}
	programs := rollout.Programs{Site: "qa", Legacy: legacy, New: next}

	setFlag := func(on bool) {
		variant := "off"
		if on {
			variant = "on"
		}
		prov := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
			rollout.Flag: {Key: rollout.Flag, State: memprovider.Enabled, DefaultVariant: variant,
				Variants: map[string]any{"on": true, "off": false}},
		})
		if err := openfeature.SetProviderAndWait(prov); err != nil {
			t.Fatal(err)
		}
	}
	legacyCalls := func() int { return strings.Count(legacyLog.String(), "op=execute") }

	setFlag(false)
	id, err := programs.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	run := func() {
		t.Helper()
		out, err := programs.ExecuteProgram(ctx, id, map[string]any{"question": "q"})
		if err != nil || out["answer"] != "Paris" {
			t.Fatalf("%v %v", out, err)
		}
	}
	run()
	if legacyCalls() != 1 {
		t.Fatalf("flag off: %d legacy calls, want 1", legacyCalls())
	}
	setFlag(true)
	run()
	run()
	if legacyCalls() != 1 {
		t.Fatalf("flag on: the legacy path was used (%d calls)", legacyCalls())
	}
	setFlag(false) // rollback
	run()
	if legacyCalls() != 2 {
		t.Fatalf("after rollback: %d legacy calls, want 2", legacyCalls())
	}
}
