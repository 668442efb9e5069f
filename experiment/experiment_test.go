package experiment_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge/experiment"
)

// observed runs e once and returns the control's result and the published observation.
func observed(t *testing.T, e *experiment.Experiment[int]) (int, error, experiment.Observation[int]) {
	t.Helper()
	got := make(chan experiment.Observation[int], 1)
	e.Publish = func(o experiment.Observation[int]) { got <- o }
	v, err := e.Run(context.Background())
	select {
	case o := <-got:
		return v, err, o
	case <-time.After(10 * time.Second): // a bound on a hang, not a timing assertion
		t.Fatal("no observation published")
	}
	panic("unreachable")
}

func ok(v int) func(context.Context) (int, error) {
	return func(context.Context) (int, error) { return v, nil }
}

func TestOutcomes(t *testing.T) {
	boom := errors.New("boom")
	cases := map[string]struct {
		control, candidate func(context.Context) (int, error)
		want               experiment.Outcome
	}{
		"match":              {ok(1), ok(1), experiment.Match},
		"mismatch":           {ok(1), ok(2), experiment.Mismatch},
		"error":              {ok(1), func(context.Context) (int, error) { return 0, boom }, experiment.Errored},
		"panic":              {ok(1), func(context.Context) (int, error) { panic("candidate bug") }, experiment.Panicked},
		"both fail":          {func(context.Context) (int, error) { return 0, boom }, func(context.Context) (int, error) { return 0, errors.New("other") }, experiment.Match},
		"only control fails": {func(context.Context) (int, error) { return 0, boom }, ok(1), experiment.Mismatch},
	}
	for name, c := range cases {
		e := &experiment.Experiment[int]{Name: name, Control: c.control, Candidate: c.candidate}
		v, err, o := observed(t, e)
		cv, cerr := c.control(context.Background())
		if v != cv || !errors.Is(err, cerr) {
			t.Errorf("%s: the caller got (%v, %v), not the control's (%v, %v)", name, v, err, cv, cerr)
		}
		if o.Outcome != c.want {
			t.Errorf("%s: outcome %s, want %s (%+v)", name, o.Outcome, c.want, o)
		}
	}
}

// The caller gets the control's answer while the candidate is still running: Run returns
// before the test releases the candidate.
func TestSlowCandidateNeverDelaysTheCaller(t *testing.T) {
	release := make(chan struct{})
	e := &experiment.Experiment[int]{
		Name: "slow", Control: ok(7),
		Candidate: func(ctx context.Context) (int, error) { <-release; return 7, nil },
	}
	got := make(chan experiment.Observation[int], 1)
	e.Publish = func(o experiment.Observation[int]) { got <- o }
	v, err := e.Run(context.Background())
	if v != 7 || err != nil {
		t.Fatalf("%v %v", v, err)
	}
	select {
	case <-got:
		t.Fatal("observed before the candidate finished")
	default:
	}
	close(release)
	if o := <-got; o.Outcome != experiment.Match {
		t.Fatalf("%+v", o)
	}
}

func TestCandidateTimeout(t *testing.T) {
	e := &experiment.Experiment[int]{
		Name: "hang", Control: ok(1), Timeout: time.Millisecond,
		Candidate: func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() },
	}
	if _, _, o := observed(t, e); o.Outcome != experiment.TimedOut {
		t.Fatalf("%+v", o)
	}
}

func TestSamplingAndDisabled(t *testing.T) {
	var runs atomic.Int64
	cand := func(context.Context) (int, error) { runs.Add(1); return 1, nil }
	never := &experiment.Experiment[int]{Name: "off", Control: ok(1), Candidate: cand, Disabled: true}
	rare := &experiment.Experiment[int]{Name: "rare", Control: ok(1), Candidate: cand, SampleRate: 1e-12}
	for range 1000 {
		_, _ = never.Run(context.Background())
		_, _ = rare.Run(context.Background())
	}
	if n := runs.Load(); n != 0 {
		t.Fatalf("the candidate ran %d times", n)
	}
}
