package dspy_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/dspy"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/store"
)

var capitals = func() []map[string]any {
	var out []map[string]any
	for _, c := range [][2]string{{"France", "Paris"}, {"Italy", "Rome"}, {"Spain", "Madrid"}, {"Japan", "Tokyo"},
		{"Egypt", "Cairo"}, {"Peru", "Lima"}, {"Kenya", "Nairobi"}, {"Chile", "Santiago"}, {"Cuba", "Havana"}, {"Iran", "Tehran"}} {
		out = append(out, map[string]any{"question": "capital of " + c[0] + "?", "answer": c[1]})
	}
	return out
}()

// followExamples is DSPy's DummyLM in its "follow examples" mode: a question that is one of
// the prompt's demos gets the demo's answer, any other none (a parse error, scored 0). The
// demos are what the optimizer chooses, so the score measures its work.
var followExamples = dspy.LMConfig{Provider: "dummy", FollowExamples: true}

func openOn(t *testing.T, s store.Store) (*dspy.Client, *mlbridge.Pool) {
	t.Helper()
	p, err := mlbridge.OpenPool(context.Background(), mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: dspy.Bridge, Python: testenv.Python(t)}, Size: 1, Store: s,
	})
	if err != nil {
		t.Fatal(err)
	}
	return dspy.New(p), p
}

// score evaluates program id on the capitals, retrying a call that raced a worker's death.
func score(t *testing.T, c *dspy.Client, id string) float64 {
	t.Helper()
	for {
		r, err := c.Evaluate(context.Background(), id, dspy.EvaluateConfig{Devset: capitals, Metric: dspy.ExactMatch("answer")})
		if errors.Is(err, mlbridge.ErrWorkerExited) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Results) != len(capitals) {
			t.Fatalf("%d results for %d examples", len(r.Results), len(capitals))
		}
		return r.Score
	}
}

// An optimizer run from Go streams its trials, and its result is stored as the program's next
// version: the worker that replaces a killed one, and a new pool on the same bolt file (a host
// restart), run the optimized program. It exports as DSPy's JSON and imports again.
func TestOptimizeStoresTheOptimizedProgram(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "defs.db")
	bolt, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	c, p := openOn(t, bolt)
	if err := c.ConfigureLM(ctx, followExamples); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer", dspy.WithID("capitals"))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := c.Adapter().Get(ctx, id)
	scoreBefore := score(t, c, id)

	var trials []float64
	metricCalls := 0
	res, err := c.Optimize(ctx, id, dspy.OptimizeConfig{
		Optimizer: "BootstrapFewShotWithRandomSearch", Trainset: capitals, Metric: dspy.ExactMatch("answer"),
		Options: map[string]any{"max_labeled_demos": 4, "max_bootstrapped_demos": 2, "max_errors": 100, "num_candidate_programs": 2},
		Progress: func(e dspy.Progress) {
			switch e.Event {
			case "trial":
				trials = append(trials, e.Score)
			case "metric":
				metricCalls = e.Calls
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Zero-shot scores 0; every candidate with the 4 labeled demos answers those 4 of 10.
	if !slices.Equal(trials, []float64{0, 0.4, 0.4, 0.4, 0.4}) || metricCalls != res.MetricCalls || metricCalls == 0 {
		t.Fatalf("trials %v, metric calls %d (result %+v)", trials, metricCalls, res)
	}
	if res.Version != before.Version+1 || res.Demos != 4 || res.Trials != 5 || res.BestScore == nil || *res.BestScore != 0.4 {
		t.Fatalf("result %+v, version before %d", res, before.Version)
	}
	if info, err := c.GetProgramInfo(ctx, id); err != nil || info.Demos != 4 {
		t.Fatalf("info %+v %v", info, err)
	}
	scoreAfter := score(t, c, id)
	t.Logf("score before %.2f, after %.2f; version %d -> %d; %d trials, %d metric calls",
		scoreBefore, scoreAfter, before.Version, res.Version, len(trials), metricCalls)
	if scoreBefore != 0 || scoreAfter != 0.4 {
		t.Fatalf("score before %v after %v", scoreBefore, scoreAfter)
	}

	// The worker started after the first is killed builds the optimized version.
	old := p.Stats().Workers[0].Pid
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if s := score(t, c, id); s != 0.4 || p.Stats().Workers[0].Pid == old {
		t.Fatalf("on a new worker: score %v, pid %d (old %d)", s, p.Stats().Workers[0].Pid, old)
	}

	// A host restart: a new pool on the same file.
	_ = p.Close()
	if err := bolt.Close(); err != nil {
		t.Fatal(err)
	}
	bolt, err = store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() })
	c, p = openOn(t, bolt)
	t.Cleanup(func() { _ = p.Close() })
	if s := score(t, c, id); s != 0.4 {
		t.Fatalf("after a restart: score %v", s)
	}
	if d, err := c.Adapter().Get(ctx, id); err != nil || d.Version != res.Version {
		t.Fatalf("after a restart: version %d %v, want %d", d.Version, err, res.Version)
	}

	// Export as DSPy's JSON, import as a new program: the same demos, the same score.
	state, err := c.ExportProgram(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	copyID, err := c.ImportProgram(ctx, "question -> answer", state)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.GetProgramInfo(ctx, copyID); err != nil || info.Demos != 4 || score(t, c, copyID) != 0.4 {
		t.Fatalf("imported: %+v %v", info, err)
	}
	// A state of another module is refused, and not stored.
	if _, err := c.ImportProgram(ctx, "question -> answer", state, dspy.WithModule("MultiChainComparison")); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("import into another module: %v", err)
	}
	if _, err := c.ImportProgram(ctx, "question -> answer", []byte("{not json")); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("import of non-JSON: %v", err)
	}
	if ids, _ := c.ListPrograms(ctx); len(ids) != 2 {
		t.Fatalf("programs %v", ids)
	}
}

// Ending ctx mid-run stops the optimizer in Python: Optimize returns ErrCancelled, nothing is
// stored, the worker's thread is freed long before the run would have ended, and the worker
// serves the next calls.
func TestOptimizeCancel(t *testing.T) {
	bg := context.Background()
	c, id := followingProgram(t)
	var err error
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	events := 0
	_, err = c.Optimize(ctx, id, dspy.OptimizeConfig{
		Optimizer: "BootstrapFewShotWithRandomSearch", Trainset: capitals, Metric: dspy.ExactMatch("answer"),
		// Thousands of candidates: minutes of work, unless it stops.
		Options: map[string]any{"max_labeled_demos": 4, "max_errors": 1_000_000, "num_candidate_programs": 5000},
		Progress: func(e dspy.Progress) {
			if events++; e.Event == "trial" && e.Trial == 3 {
				cancel()
			}
		},
	})
	if !errors.Is(err, mlbridge.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want ErrCancelled", err)
	}
	cancelled := time.Now()
	// The abandoned thread (the runtime counts it until the handler returns) ends promptly.
	for {
		h, err := mlbridge.Decode[struct {
			Abandoned int `msgpack:"abandoned"`
		}](c.Adapter().Call(bg, "health_check", nil))
		if err != nil {
			t.Fatal(err)
		}
		if h.Abandoned == 0 {
			break
		}
		if time.Since(cancelled) > 5*time.Second {
			t.Fatalf("the optimizer still runs %v after the cancel", time.Since(cancelled))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d, _ := c.Adapter().Get(bg, id); d.Version != 1 || len(d.State) != 0 {
		t.Fatalf("a cancelled run stored version %d (%d state bytes)", d.Version, len(d.State))
	}
	if info, err := c.GetProgramInfo(bg, id); err != nil || info.Demos != 0 {
		t.Fatalf("info after cancel: %+v %v", info, err)
	}
	if s := score(t, c, id); s != 0 {
		t.Fatalf("score after cancel %v", s)
	}
	t.Logf("cancelled after %d progress events; the worker's thread was free %v later", events, time.Since(cancelled).Round(time.Millisecond))
}

// Optimizer and Evaluate arguments are checked in Go, before any call.
func TestOptimizeArgumentsAreChecked(t *testing.T) {
	ctx := context.Background()
	c, id := followingProgram(t)
	ok := dspy.OptimizeConfig{Optimizer: "BootstrapFewShot", Trainset: capitals, Metric: dspy.F1("answer")}
	for i, cfg := range []dspy.OptimizeConfig{
		{Optimizer: "COPRO", Trainset: capitals, Metric: dspy.ExactMatch("answer")},
		{Optimizer: "BootstrapFewShot", Metric: dspy.ExactMatch("answer")},
		{Optimizer: "BootstrapFewShot", Trainset: capitals, Metric: dspy.Metric{Builtin: "bleu", Field: "answer"}},
		{Optimizer: "BootstrapFewShot", Trainset: capitals, Metric: dspy.Contains("label")},
		{Optimizer: "BootstrapFewShot", Trainset: capitals, Metric: dspy.ExactMatch("answer"),
			Options: map[string]any{"num_threads": 8}}, // refused by the worker
	} {
		if _, err := c.Optimize(ctx, id, cfg); !errors.Is(err, mlbridge.ErrInvalidArgument) {
			t.Errorf("case %d: %v, want ErrInvalidArgument", i, err)
		}
	}
	if _, err := c.Optimize(ctx, "prog_nope", ok); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Errorf("unknown program: %v", err)
	}
	if _, err := c.Evaluate(ctx, id, dspy.EvaluateConfig{Devset: capitals, Metric: dspy.ExactMatch("nope")}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Errorf("evaluate without the metric's field: %v", err)
	}
	// MIPROv2's options are checked before anything else (optuna or not).
	if _, err := c.Optimize(ctx, id, dspy.OptimizeConfig{Optimizer: "MIPROv2", Trainset: capitals, Metric: dspy.ExactMatch("answer"),
		Options: map[string]any{"auto": "extreme"}}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Errorf("MIPROv2 auto extreme: %v", err)
	}
}

// Ending ctx stops an Evaluate in Python, even one whose examples all fail before the metric
// (the follow-examples LM without demos answers nothing): the check runs before each module
// and LM call. The worker's thread is free long before the thousands of examples are done.
func TestEvaluateCancel(t *testing.T) {
	bg := context.Background()
	c, id := followingProgram(t)
	var err error
	var devset []map[string]any
	for i := range 20_000 {
		devset = append(devset, map[string]any{"question": fmt.Sprintf("q%d", i), "answer": "a"})
	}
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Evaluate(ctx, id, dspy.EvaluateConfig{Devset: devset, Metric: dspy.ExactMatch("answer")})
	if !errors.Is(err, mlbridge.ErrTimeout) && !errors.Is(err, mlbridge.ErrCancelled) {
		t.Fatalf("got %v, want the deadline's error", err)
	}
	for {
		h, err := mlbridge.Decode[struct {
			Abandoned int `msgpack:"abandoned"`
		}](c.Adapter().Call(bg, "health_check", nil))
		if err != nil {
			t.Fatal(err)
		}
		if h.Abandoned == 0 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the evaluation still runs 5s after its deadline")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%v; the worker's thread was free %v after the start", err, time.Since(start).Round(time.Millisecond))
}

// BootstrapFewShot from Go: no candidates to score (no trials), its labeled demos stored as the
// next version, and the score they bring.
func TestOptimizeBootstrapFewShot(t *testing.T) {
	ctx := context.Background()
	c, id := followingProgram(t)
	res, err := c.Optimize(ctx, id, dspy.OptimizeConfig{
		Optimizer: "BootstrapFewShot", Trainset: capitals, Metric: dspy.F1("answer"),
		Options: map[string]any{"max_labeled_demos": 3, "max_errors": 100},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 || res.Demos != 3 || res.Trials != 0 || res.BestScore != nil {
		t.Fatalf("result %+v", res)
	}
	if s := score(t, c, id); s != 0.3 {
		t.Fatalf("score after %v, want 0.3", s)
	}
}

// A program redefined while it is optimized keeps the new definition: the result, computed
// from the older one, is not stored.
func TestOptimizeProgramChanged(t *testing.T) {
	ctx := context.Background()
	c, id := followingProgram(t)
	var err error
	d, _ := c.Adapter().Get(ctx, id)
	redefined := false
	_, err = c.Optimize(ctx, id, dspy.OptimizeConfig{
		Optimizer: "BootstrapFewShotWithRandomSearch", Trainset: capitals, Metric: dspy.ExactMatch("answer"),
		Options: map[string]any{"max_labeled_demos": 4, "max_errors": 100, "num_candidate_programs": 1},
		Progress: func(dspy.Progress) {
			if !redefined {
				redefined = true
				d.Spec["instructions"] = "Answer with the city only."
				if _, err := c.Adapter().Create(ctx, d); err != nil {
					t.Error(err)
				}
			}
		},
	})
	if !errors.Is(err, dspy.ErrProgramChanged) {
		t.Fatalf("got %v, want ErrProgramChanged", err)
	}
	if info, err := c.GetProgramInfo(ctx, id); err != nil || info.Instructions != "Answer with the city only." || info.Demos != 0 {
		t.Fatalf("info %+v %v", info, err)
	}
}

// createRacer redefines a program right before the first store of an optimized state: the
// redefinition lands after every read Optimize makes, so only the store's compare-and-set
// (IfVersion) can keep it.
type createRacer struct {
	mlbridge.Adapter
	raced bool
}

func (a *createRacer) Create(ctx context.Context, d store.Definition) (store.Definition, error) {
	if !a.raced && d.Kind == "program" && d.State != nil {
		a.raced = true
		cur, err := a.Adapter.Get(ctx, d.ID)
		if err != nil {
			return d, err
		}
		cur.Spec["instructions"] = "Answer with the city only."
		if _, err := a.Adapter.Create(ctx, cur); err != nil {
			return d, err
		}
	}
	return a.Adapter.Create(ctx, d)
}

// A redefinition that lands between Optimize's last read and its store is kept: the store is
// a compare-and-set, and Optimize fails with ErrProgramChanged (and store.ErrConflict).
func TestOptimizeStoreIsACompareAndSet(t *testing.T) {
	ctx := context.Background()
	c0, id := followingProgram(t)
	c := dspy.New(&createRacer{Adapter: c0.Adapter()})
	_, err := c.Optimize(ctx, id, dspy.OptimizeConfig{
		Optimizer: "BootstrapFewShot", Trainset: capitals, Metric: dspy.F1("answer"),
		Options: map[string]any{"max_labeled_demos": 3, "max_errors": 100},
	})
	if !errors.Is(err, dspy.ErrProgramChanged) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("got %v, want ErrProgramChanged and store.ErrConflict", err)
	}
	if info, err := c.GetProgramInfo(ctx, id); err != nil || info.Instructions != "Answer with the city only." || info.Demos != 0 {
		t.Fatalf("info %+v %v: want the redefinition, not optimized", info, err)
	}
}

// followingProgram is a client on a fresh pool whose LM follows the prompt's examples, and a
// question -> answer program on it.
func followingProgram(t *testing.T) (*dspy.Client, string) {
	t.Helper()
	ctx := context.Background()
	c := open(t)
	if err := c.ConfigureLM(ctx, followExamples); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	return c, id
}

// outageStore is a memory store whose reads fail while down is set, as an unreachable KV
// bucket's do.
type outageStore struct {
	store.Store
	down atomic.Bool
}

func (s *outageStore) Get(ctx context.Context, id string) (store.Definition, error) {
	if s.down.Load() {
		return store.Definition{}, errors.New("kv: no responders")
	}
	return s.Store.Get(ctx, id)
}

// A store that cannot be read is not a missing program: the client's operations fail with
// ErrUnavailable, so that the caller retries rather than creating the program again, and
// Optimize stores nothing.
func TestStoreOutageIsNotAMissingProgram(t *testing.T) {
	ctx := context.Background()
	s := &outageStore{Store: store.NewMemory()}
	c, _ := openOn(t, s)
	if err := c.ConfigureLM(ctx, followExamples); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	s.down.Store(true)
	_, infoErr := c.GetProgramInfo(ctx, id)
	delErr := c.DeleteProgram(ctx, id)
	_, optErr := c.Optimize(ctx, id, dspy.OptimizeConfig{Optimizer: "BootstrapFewShot", Trainset: capitals, Metric: dspy.F1("answer")})
	for what, err := range map[string]error{"GetProgramInfo": infoErr, "DeleteProgram": delErr, "Optimize": optErr} {
		if !errors.Is(err, mlbridge.ErrUnavailable) || errors.Is(err, mlbridge.ErrNotFound) {
			t.Errorf("%s with the store down: %v, want ErrUnavailable, not ErrNotFound", what, err)
		}
	}
	s.down.Store(false)
	if _, err := c.GetProgramInfo(ctx, "nope"); !errors.Is(err, mlbridge.ErrNotFound) {
		t.Errorf("a program never made: %v, want ErrNotFound", err)
	}
	if info, err := c.GetProgramInfo(ctx, id); err != nil || info.Demos != 0 {
		t.Errorf("after the outage: %+v %v", info, err)
	}
}
