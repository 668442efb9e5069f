// Package experiment runs shadow comparisons while migrating: the control (the legacy path)
// answers the caller; a candidate (the new path) runs beside it on a sample of calls, and the
// two results are compared and published. In the spirit of GitHub's Scientist: the candidate
// can panic, fail or hang, and the caller never sees it — it always gets the control's result,
// without waiting for the candidate.
package experiment

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Outcome is how a candidate run compared with the control.
type Outcome string

const (
	Match    Outcome = "match"    // both succeeded with equal results, or failed alike
	Mismatch Outcome = "mismatch" // results (or success/failure) differ
	Errored  Outcome = "error"    // the candidate failed where the control succeeded
	Panicked Outcome = "panic"    // the candidate panicked
	TimedOut Outcome = "timeout"  // the candidate exceeded Experiment.Timeout
)

// Observation is one compared run, handed to Experiment.Publish (and logged and counted).
type Observation[T any] struct {
	Name              string
	Outcome           Outcome
	Control           T
	ControlErr        error
	Candidate         T
	CandidateErr      error // includes a recovered panic or the timeout
	ControlDuration   time.Duration
	CandidateDuration time.Duration
}

// Experiment compares a control with a candidate. The zero values of the optional fields are
// usable defaults. An Experiment is safe for concurrent Runs.
type Experiment[T any] struct {
	Name      string
	Control   func(context.Context) (T, error)
	Candidate func(context.Context) (T, error)

	// Compare reports whether two successful results are equal (default reflect.DeepEqual).
	Compare func(control, candidate T) bool
	// SampleRate is the fraction of runs in which the candidate also runs, 0 to 1 (default 1).
	// Set Disabled to turn the candidate off entirely.
	SampleRate float64
	Disabled   bool
	// Timeout bounds the candidate (default 30s); it runs on a context detached from the
	// caller's cancellation, so returning the control's result never cancels it half-way.
	Timeout time.Duration
	// Publish receives every observation (from the candidate's goroutine).
	Publish func(Observation[T])
	Logger  *slog.Logger
}

// Run runs the control and returns its result. The candidate, when sampled, runs on its own
// goroutine; its outcome is compared and published when both are done.
func (e *Experiment[T]) Run(ctx context.Context) (T, error) {
	if e.Disabled || e.Candidate == nil || !e.sampled() {
		return e.Control(ctx)
	}
	cand := make(chan run[T], 1)
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	go func() {
		defer cancel()
		cand <- timed(cctx, e.Candidate)
	}()
	ctrl := timed(ctx, e.Control)
	go e.observe(ctx, ctrl, cand, cctx)
	return ctrl.v, ctrl.err
}

// run is one path's result and duration.
type run[T any] struct {
	v   T
	err error
	d   time.Duration
}

func timed[T any](ctx context.Context, f func(context.Context) (T, error)) run[T] {
	start := time.Now()
	v, err := safeCall(ctx, f)
	return run[T]{v, err, time.Since(start)}
}

func (e *Experiment[T]) sampled() bool {
	rate := e.SampleRate
	if rate == 0 {
		rate = 1
	}
	return rate >= 1 || rand.Float64() < rate
}

// errPanic wraps a candidate's panic.
type errPanic struct{ v any }

func (p errPanic) Error() string { return fmt.Sprintf("candidate panicked: %v", p.v) }

func safeCall[T any](ctx context.Context, f func(context.Context) (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errPanic{r}
		}
	}()
	return f(ctx)
}

// observe waits for the candidate (on its own goroutine: the caller has its answer already),
// then compares and publishes.
func (e *Experiment[T]) observe(ctx context.Context, ctrl run[T], cand <-chan run[T], cctx context.Context) {
	c := <-cand
	o := Observation[T]{Name: e.Name, Control: ctrl.v, ControlErr: ctrl.err, Candidate: c.v, CandidateErr: c.err,
		ControlDuration: ctrl.d, CandidateDuration: c.d}
	o.Outcome = e.outcome(o, cctx)
	e.publish(ctx, o)
}

func (e *Experiment[T]) outcome(o Observation[T], cctx context.Context) Outcome {
	if _, ok := o.CandidateErr.(errPanic); ok {
		return Panicked
	}
	if o.CandidateErr != nil && cctx.Err() == context.DeadlineExceeded {
		return TimedOut
	}
	switch {
	case o.ControlErr != nil && o.CandidateErr != nil:
		return Match // both failed; error texts differ between paths by design
	case o.CandidateErr != nil:
		return Errored
	case o.ControlErr != nil:
		return Mismatch
	}
	eq := e.Compare
	if eq == nil {
		eq = func(a, b T) bool { return reflect.DeepEqual(a, b) }
	}
	if eq(o.Control, o.Candidate) {
		return Match
	}
	return Mismatch
}

// Instruments, created once from the global MeterProvider (a no-op until the application
// installs one).
var (
	meter     = otel.Meter("github.com/mlbridge/mlbridge/experiment")
	runs, _   = meter.Int64Counter("mlbridge.experiment.runs", metric.WithDescription("candidate runs by outcome"))
	timing, _ = meter.Float64Histogram("mlbridge.experiment.duration", metric.WithUnit("s"),
		metric.WithDescription("duration of the control and the candidate"))
)

func (e *Experiment[T]) publish(ctx context.Context, o Observation[T]) {
	ctx = context.WithoutCancel(ctx)
	name := attribute.String("experiment", e.Name)
	runs.Add(ctx, 1, metric.WithAttributes(name, attribute.String("outcome", string(o.Outcome))))
	timing.Record(ctx, o.ControlDuration.Seconds(), metric.WithAttributes(name, attribute.String("path", "control")))
	timing.Record(ctx, o.CandidateDuration.Seconds(), metric.WithAttributes(name, attribute.String("path", "candidate")))
	if o.Outcome != Match {
		log := e.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("mlbridge: experiment candidate differs", "experiment", e.Name, "outcome", o.Outcome,
			"control_err", o.ControlErr, "candidate_err", o.CandidateErr,
			"control_ms", o.ControlDuration.Milliseconds(), "candidate_ms", o.CandidateDuration.Milliseconds())
	}
	if e.Publish != nil {
		e.Publish(o)
	}
}
