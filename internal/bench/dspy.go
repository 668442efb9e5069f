package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/adapters"
)

// runDSPy measures what the bridge adds to a DSPy program: ExecuteProgram through the legacy
// PythonPort against the same program run directly in the worker's Python (the time_program
// handler), in alternating phases of one run. The LM is DSPy's DummyLM, so the numbers are
// about the bridge, not a model.
func runDSPy(ctx context.Context, o Options, python string) (*Report, error) {
	port, err := adapters.NewPythonPort(ctx, adapters.Options{Python: python, Logger: o.Logger, Phase: adapters.PhaseOff})
	if err != nil {
		return nil, err
	}
	defer port.Close()
	// DummyLM answers from this list in order, then "No more responses": either way one
	// formatted answer per call, the same work in both phases.
	if err := port.ConfigureLM(ctx, adapters.LMConfig{Provider: "dummy", Answers: []map[string]any{{"answer": "Paris"}}}); err != nil {
		return nil, err
	}
	id, err := port.CreateProgram(ctx, "question -> answer")
	if err != nil {
		return nil, err
	}
	inputs := map[string]any{"question": "What is the capital of France?"}
	bridged := func(ctx context.Context) error { _, err := port.ExecuteProgram(ctx, id, inputs); return err }
	direct := func(ctx context.Context, d time.Duration) (latencies, error) {
		secs, err := mlbridge.Decode[[]float64](port.Adapter().Call(ctx, "time_program",
			map[string]any{"program_id": id, "inputs": inputs, "seconds": d.Seconds()}, mlbridge.Uses(id)))
		if err != nil {
			return nil, fmt.Errorf("direct run: %w", err)
		}
		lat := make(latencies, len(secs))
		for i, s := range secs {
			lat[i] = time.Duration(s * float64(time.Second))
		}
		return lat, nil
	}

	// The transport's own cost, measured in the same run: a no-op through the same pool on an
	// async handler (ping: the pipe round trip) and on a sync one (list_programs: the round
	// trip and the hop onto the worker's thread pool that ExecuteProgram, a sync handler,
	// pays too). overhead_us cannot be lower than the sync no-op's time.
	ping := func(ctx context.Context) error { _, err := port.Adapter().Call(ctx, "ping", nil); return err }
	syncNoop := func(ctx context.Context) error { _, err := port.Adapter().Call(ctx, "list_programs", nil); return err }

	// Per round: the direct and bridged phases take 2/5 of it each, the two no-op phases
	// 1/10 each, so that a run still takes --duration.
	phase := 2 * o.Duration / time.Duration(5*o.Rounds)
	noopPhase := phase / 4
	if _, err := direct(ctx, phase/4); err != nil { // warm up: first-call imports and caches
		return nil, err
	}
	if _, _, err := sequentialCalls(ctx, bridged, phase/4); err != nil {
		return nil, err
	}
	var dLat, bLat, pLat, sLat latencies
	var errs int64
	for range o.Rounds {
		for _, m := range []struct {
			f   func(context.Context) error
			lat *latencies
		}{{ping, &pLat}, {syncNoop, &sLat}} {
			l, e, err := sequentialCalls(ctx, m.f, noopPhase)
			if err != nil {
				return nil, err
			}
			*m.lat, errs = append(*m.lat, l...), errs+e
		}
		l, err := direct(ctx, phase)
		if err != nil {
			return nil, err
		}
		dLat = append(dLat, l...)
		l, e, err := sequentialCalls(ctx, bridged, phase)
		if err != nil {
			return nil, err
		}
		bLat, errs = append(bLat, l...), errs+e
	}
	rep := &Report{
		Scenario: "dspy", Workers: 1, Concurrency: 1, DurationS: o.Duration.Seconds(), Rounds: o.Rounds,
		P50us: micros(bLat.percentile(0.5)), P99us: micros(bLat.percentile(0.99)),
		DirectP50us: micros(dLat.percentile(0.5)), DirectP99us: micros(dLat.percentile(0.99)),
		NoopP50us: micros(pLat.percentile(0.5)), SyncNoopP50us: micros(sLat.percentile(0.5)),
		Calls: int64(len(bLat) + len(dLat)), Errors: errs, // the programs run, as before the no-op phases
	}
	rep.OverheadUs = rep.P50us - rep.DirectP50us
	return rep, nil
}
