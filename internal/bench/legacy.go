package bench

import (
	"context"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/adapters"
	"github.com/mlbridge/mlbridge/dspy"
)

// runLegacyVsNew measures the new interface against the legacy one on the same program: a
// legacy PythonPoolV2.ExecuteProgram and a dspy.Client.ExecuteProgram on one shared pool,
// alternating call by call so that drift on a noisy machine hits both alike. DummyLM, so the
// numbers are about the two interfaces, not a model.
func runLegacyVsNew(ctx context.Context, o Options, python string) (*Report, error) {
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: dspy.Bridge, Python: python, Logger: o.Logger}, Size: 1,
	})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	legacy, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Adapter: p, Logger: o.Logger, Phase: adapters.PhaseOff})
	if err != nil {
		return nil, err
	}
	client := dspy.New(p)
	if err := client.ConfigureLM(ctx, dspy.LMConfig{Provider: "dummy", Answers: []map[string]any{{"answer": "Paris"}}}); err != nil {
		return nil, err
	}
	id, err := legacy.CreateProgram(ctx, "question -> answer")
	if err != nil {
		return nil, err
	}
	inputs := map[string]any{"question": "What is the capital of France?"}
	var oldLat, newLat latencies
	var errs int64
	measure := func(lat *latencies, f func() error) {
		t0 := time.Now()
		if f() != nil {
			errs++
		}
		*lat = append(*lat, time.Since(t0))
	}
	callOld := func() error { _, err := legacy.ExecuteProgram(ctx, id, inputs); return err }
	callNew := func() error { _, err := client.ExecuteProgram(ctx, id, inputs); return err }
	warm := time.Now().Add(o.Duration / 10)
	for time.Now().Before(warm) && ctx.Err() == nil {
		_, _ = callOld(), callNew()
	}
	end := time.Now().Add(o.Duration)
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		if i%2 == 0 { // alternate which goes first, so neither always follows the other
			measure(&oldLat, callOld)
			measure(&newLat, callNew)
		} else {
			measure(&newLat, callNew)
			measure(&oldLat, callOld)
		}
	}
	rep := &Report{
		Scenario: "legacy-vs-new", Workers: 1, Concurrency: 1, DurationS: o.Duration.Seconds(), Rounds: 1,
		P50us: micros(newLat.percentile(0.5)), P99us: micros(newLat.percentile(0.99)),
		LegacyP50us: micros(oldLat.percentile(0.5)), LegacyP99us: micros(oldLat.percentile(0.99)),
		Calls: int64(len(oldLat) + len(newLat)), Errors: errs,
	}
	if rep.LegacyP50us > 0 {
		rep.OverheadPct = 100 * (rep.P50us - rep.LegacyP50us) / rep.LegacyP50us
	}
	return rep, nil
}
