// Package mlbridge lets Go programs call Python ML frameworks (DSPy, LangChain,
// scikit-learn, llama.cpp models, your own) running in supervised Python worker processes.
//
// A Bridge is one Python process. Call blocks, Submit returns a Future, Stream returns an
// iterator; all three take a context whose deadline and cancellation reach Python.
//
//	b, err := mlbridge.Open(ctx, mlbridge.Config{Bridge: "mlbridge_worker.echo:EchoBridge"})
//	if err != nil { ... }
//	defer b.Close()
//	sum, err := mlbridge.Decode[int](b.Call(ctx, "add", map[string]any{"a": 1, "b": 2}))
package mlbridge

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"time"

	"github.com/mlbridge/mlbridge/internal/worker"
)

// HandlerKind is how a Python handler runs: sync (thread pool), async (event loop task),
// or a generator of either kind (streamed).
type HandlerKind string

const (
	KindSync     HandlerKind = "sync"
	KindAsync    HandlerKind = "async"
	KindSyncGen  HandlerKind = "sync_gen"
	KindAsyncGen HandlerKind = "async_gen"
)

// Info is what a worker announced when it started.
type Info struct {
	Pid              int
	ProtocolVersion  int
	Framework        string
	FrameworkVersion string
	Capabilities     []string
	Handlers         map[string]HandlerKind
}

// Bridge is a connection to one Python worker process. It is safe for concurrent use.
type Bridge struct {
	w           *worker.Worker
	maxInFlight int
	info        Info
	tracer      *callTracer // each call's client span (pool_trace.go)
}

// Open starts the worker and returns once it completed its handshake (ctx bounds the
// start only).
func Open(ctx context.Context, cfg Config) (*Bridge, error) {
	wcfg := cfg.workerConfig()
	if err := cfg.withHostFuncs(&wcfg); err != nil {
		return nil, err
	}
	if wcfg.Logger == nil {
		wcfg.Logger = slog.Default().With("bridge", cfg.Bridge) // as a pool's default names it
	}
	tracer := newCallTracer(cfg.TracerProvider, cfg.Bridge, captureContent(worker.Env(cfg.EnvAllow, cfg.Env)))
	wcfg.Spans = tracer // each request's handler span, under its client span
	w, err := worker.Start(ctx, wcfg)
	if err != nil {
		return nil, err
	}
	b := &Bridge{w: w, maxInFlight: cfg.MaxInFlight, tracer: tracer}
	if b.maxInFlight <= 0 {
		b.maxInFlight = defaultMaxInFlight
	}
	b.info = infoOf(w)
	return b, nil
}

func infoOf(w *worker.Worker) Info {
	h := w.Info()
	info := Info{
		Pid: h.Pid, ProtocolVersion: int(h.Version), Framework: h.Framework.Name,
		FrameworkVersion: h.Framework.Version, Capabilities: h.Capabilities,
		Handlers: make(map[string]HandlerKind, len(h.Handlers)),
	}
	for op, kind := range h.Handlers {
		info.Handlers[op] = HandlerKind(kind)
	}
	return info
}

// Info describes the worker: pid, framework, handlers and their kinds.
func (b *Bridge) Info() Info { return b.info }

// Call runs op with args (a struct or map[string]any, or nil) and waits for its result.
// It is Submit followed by Wait.
func (b *Bridge) Call(ctx context.Context, op string, args any) (Result, error) {
	ctx, span := b.tracer.start(ctx, &b.info, modeCall, op)
	c, err := b.send(ctx, op, args, false)
	var res Result
	if err == nil {
		res, err = resultOf(ctx, c)
	}
	b.tracer.end(span, err)
	return res, err
}

// Submit starts op and returns at once. ctx governs the call itself: its deadline is sent
// to Python, and cancelling it cancels the call in Python.
func (b *Bridge) Submit(ctx context.Context, op string, args any) *Future {
	ctx, span := b.tracer.start(ctx, &b.info, modeSubmit, op)
	c, err := b.send(ctx, op, args, false)
	if span != nil {
		if err != nil {
			b.tracer.end(span, err)
		} else {
			// the span ends with the call, whoever waits for it (or nobody)
			go func() {
				<-c.Done()
				_, err := c.Result(context.Background())
				b.tracer.end(span, err)
			}()
		}
	}
	return &Future{call: c, err: err}
}

// Stream runs a generator op and yields each item as Python produces it. Breaking out of
// the loop, or cancelling ctx, stops the generator in Python. A non-nil error is always
// the last thing yielded.
func (b *Bridge) Stream(ctx context.Context, op string, args any) iter.Seq2[Result, error] {
	return func(yield func(Result, error) bool) {
		ctx, span := b.tracer.start(ctx, &b.info, modeStream, op)
		c, err := b.send(ctx, op, args, true)
		if err != nil {
			b.tracer.end(span, err)
			yield(Result{}, err)
			return
		}
		b.tracer.end(span, drain(c, yield))
	}
}

// drain yields a stream's chunks until it ends, fails, or the consumer stops (which cancels
// the generator in Python). It returns the stream's error, which it also yielded.
func drain(c *worker.Call, yield func(Result, error) bool) error {
	defer c.Cancel() // a no-op once the stream ended
	for {
		data, ok, err := c.Next()
		if err != nil {
			yield(Result{}, err)
			return err
		}
		if !ok || !yield(Result{raw: data}, nil) {
			return nil
		}
	}
}

func (b *Bridge) send(ctx context.Context, op string, args any, stream bool) (*worker.Call, error) {
	if n := b.w.InFlight(); n >= b.maxInFlight {
		return nil, fmt.Errorf("op %q: %w: %d calls in flight (MaxInFlight %d)", op, ErrOverloaded, n, b.maxInFlight)
	}
	return b.w.Send(ctx, op, args, stream)
}

// InFlight is the number of calls sent and not yet answered.
func (b *Bridge) InFlight() int { return b.w.InFlight() }

// Done is closed when the worker process is gone (after Close, or if it died).
func (b *Bridge) Done() <-chan struct{} { return b.w.Done() }

// Err says why the worker is gone; nil while it runs.
func (b *Bridge) Err() error { return b.w.Err() }

// Kill stops the worker process at once, failing every pending call with an *ExitError
// carrying reason. For supervisors and tests; prefer Close.
func (b *Bridge) Kill(reason string) { b.w.Kill(reason) }

// Shutdown stops the worker gracefully: new calls fail with ErrClosed, in-flight calls get
// the configured grace period, then the process group is terminated. It returns when the
// process is gone or ctx ends.
func (b *Bridge) Shutdown(ctx context.Context) error { return b.w.Shutdown(ctx) }

// Close is Shutdown without a deadline of its own beyond the configured escalation
// (grace, SIGTERM, SIGKILL).
func (b *Bridge) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return b.Shutdown(ctx)
}
