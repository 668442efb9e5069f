package mlbridge

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mlbridge/mlbridge/internal/errs"
)

// tracerName is the instrumentation scope of the spans mlbridge starts.
const tracerName = "github.com/mlbridge/mlbridge"

// callTracer starts the client span of each call, and (as the workers' HandlerSpans) the
// handler span under it (docs/OBSERVABILITY.md). With no provider set it starts nothing at
// all: the call path then allocates nothing for tracing, and the worker still forwards a
// span context the caller's ctx holds (internal/worker/trace.go).
type callTracer struct {
	tp      trace.TracerProvider // Config.TracerProvider; nil: the global one, read per call
	cache   atomic.Pointer[tracerEntry]
	service string
	// capture: error messages go on spans (they may quote a prompt or other input), under
	// the switch that governs GenAI content, as the workers see it (captureContent)
	capture bool
	// the start options of each (op, mode)'s client spans and (op, kind, pid)'s handler spans
	// — kind and attributes — built once (spanOptsKey → []trace.SpanStartOption), at most
	// maxSpanOpts of them: past that (ops are names the caller chooses; a long-lived pool
	// meets new pids), built per call
	opts  sync.Map
	nopts atomic.Int32
}

type spanOptsKey struct {
	op   string
	mode int    // a client span's; handlerMode for a handler span
	kind string // a handler span's handler kind
	pid  int    // a handler span's worker
}

// handlerMode keys the start options of handler spans.
const handlerMode = -1

const maxSpanOpts = 1024

type tracerEntry struct {
	tp         trace.TracerProvider
	comparable bool // tp's dynamic type supports ==: the entry can be reused
	tracer     trace.Tracer
	off        bool
}

func newCallTracer(tp trace.TracerProvider, service string, capture bool) *callTracer {
	return &callTracer{tp: tp, service: service, capture: capture}
}

// CaptureContentEnv is OpenTelemetry's switch for recording GenAI prompts and completions;
// mlbridge applies it to error messages on spans too, on both sides.
const CaptureContentEnv = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

// captureContent reads the switch from env, the workers' environment, as Python reads it.
func captureContent(env []string) bool {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == CaptureContentEnv {
			v = val // the last one wins, as in the worker's environment
		}
	}
	return strings.EqualFold(strings.TrimSpace(v), "true")
}

// spanOpts are the start options of a call's span: client kind, and its attributes (rpc
// system, service and method, and the mode), passed at start so that a sampler sees them.
func (ct *callTracer) spanOpts(op string, mode int) []trace.SpanStartOption {
	return ct.cachedOpts(spanOptsKey{op: op, mode: mode}, func() []trace.SpanStartOption {
		return []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			attribute.String("rpc.system", "mlbridge"), attribute.String("rpc.service", ct.service),
			attribute.String("rpc.method", op), attribute.String("mlbridge.mode", string(callModes[mode])),
		)}
	})
}

// handlerOpts are the start options of a handler span: server kind, the op, its kind and the
// worker's pid (all at start: added after, they cost the span a second attribute slice).
func (ct *callTracer) handlerOpts(op, kind string, pid int) []trace.SpanStartOption {
	return ct.cachedOpts(spanOptsKey{op: op, mode: handlerMode, kind: kind, pid: pid}, func() []trace.SpanStartOption {
		return []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("rpc.system", "mlbridge"), attribute.String("rpc.service", ct.service),
			attribute.String("rpc.method", op), attribute.String("mlbridge.handler_kind", kind),
			attribute.Int("mlbridge.worker.pid", pid),
		)}
	})
}

func (ct *callTracer) cachedOpts(k spanOptsKey, build func() []trace.SpanStartOption) []trace.SpanStartOption {
	if o, ok := ct.opts.Load(k); ok {
		return o.([]trace.SpanStartOption)
	}
	o := build()
	if ct.nopts.Load() < maxSpanOpts {
		if _, loaded := ct.opts.LoadOrStore(k, o); !loaded {
			ct.nopts.Add(1)
		}
	}
	return o
}

// tracer returns the tracer of the current provider, or ok false when no provider records.
// The global provider is read on every call (the application may install one after the pool
// opened); the Tracer is looked up again only when it changed.
func (ct *callTracer) tracer() (trace.Tracer, bool) {
	tp := ct.tp
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if e := ct.cache.Load(); e != nil && e.comparable && e.tp == tp {
		return e.tracer, !e.off
	}
	e := &tracerEntry{tp: tp, comparable: reflect.TypeOf(tp).Comparable(), off: tracingOff(tp)}
	if !e.off {
		e.tracer = tp.Tracer(tracerName)
	}
	ct.cache.Store(e)
	return e.tracer, !e.off
}

// tracingOff reports a provider that records nothing: OpenTelemetry's no-op one, or the
// global default before the application installed an SDK (its spans are non-recording, but
// starting one still allocates a context).
func tracingOff(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
		return true
	}
	t := reflect.TypeOf(tp)
	return t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global"
}

// spanOp is op as a span names it: an op the bridge does not declare is UnknownOp, so that
// junk op names from a client (serve's /v1/call/{op}) cannot grow a trace backend's span names.
func spanOp(info *Info, op string) string {
	if info != nil {
		if _, declared := info.Handlers[op]; declared {
			return op
		}
	}
	return UnknownOp
}

// start begins the client span of one call of op (named by spanOp, from info, the bridge's
// handshake); span is nil when tracing is off, and ctx then the caller's own.
func (ct *callTracer) start(ctx context.Context, info *Info, mode int, op string) (context.Context, trace.Span) {
	t, on := ct.tracer()
	if !on {
		return ctx, nil
	}
	op = spanOp(info, op) // bounded: the opts cache below is keyed by it too
	return t.Start(ctx, op, ct.spanOpts(op, mode)...)
}

// StartHandler begins the handler span of a request of op on a worker (pid), a child of the
// client span in ctx: internal/worker.HandlerSpans. Nothing when tracing is off, nor for a
// request sent under no span — the pool's own (health checks, a new worker's definitions),
// which would otherwise each start a trace of their own.
func (ct *callTracer) StartHandler(ctx context.Context, op, kind string, pid int) (context.Context, trace.Span) {
	t, on := ct.tracer()
	if !on || !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, nil
	}
	if kind == "" {
		op, kind = UnknownOp, "unknown" // an op the worker does not declare: bounded names
	}
	return t.Start(ctx, op, ct.handlerOpts(op, kind, pid)...)
}

// StartBatch begins the handler span of a batch of n calls of op on a worker (pid): see
// internal/worker.HandlerSpans. One traced caller: a child of its client span, as a call's
// handler span is. Several (each may be in a trace of its own): the root of a trace of its
// own, linked to each caller's span, and each caller's span linked back to it, so that a
// trace backend leads from any caller to the Python work done for it and back.
func (ct *callTracer) StartBatch(op, kind string, pid, n int, callers []trace.Span) (context.Context, trace.Span) {
	t, on := ct.tracer()
	if !on || len(callers) == 0 {
		return context.Background(), nil
	}
	opts := append([]trace.SpanStartOption{trace.WithAttributes(attribute.Int("mlbridge.batch.size", n))},
		ct.handlerOpts(op, kind, pid)...)
	if len(callers) == 1 {
		return t.Start(trace.ContextWithSpan(context.Background(), callers[0]), op, opts...)
	}
	links := make([]trace.Link, len(callers))
	for i, c := range callers {
		links[i] = trace.Link{SpanContext: c.SpanContext()}
	}
	ctx, span := t.Start(context.Background(), op, append(opts, trace.WithNewRoot(), trace.WithLinks(links...))...)
	back := trace.Link{SpanContext: span.SpanContext()}
	for _, c := range callers {
		c.AddLink(back)
	}
	return ctx, span
}

// EndHandler ends a handler span with its request's outcome, as end does.
func (ct *callTracer) EndHandler(span trace.Span, err error) { ct.end(span, err) }

// end ends a call's span with its outcome: an error sets the error status and its category
// (error.type: cancelled, timeout, a worker's category...); a cancel or a deadline is also
// recorded as an event, so that it shows on the span's timeline. The error's text (a Python
// exception's message, a dead worker's last stderr lines: either may quote the call's input)
// is recorded only under the content switch; without it, the span says the category and,
// for a Python exception, its class — as GenAI spans do (python/mlbridge_worker/genai.py).
func (ct *callTracer) end(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil && span.IsRecording() {
		category := errorCategory(err)
		span.SetAttributes(attribute.String("error.type", category))
		if category == "cancelled" || category == "timeout" {
			span.AddEvent("mlbridge.cancel", trace.WithAttributes(attribute.String("mlbridge.reason", category)))
		}
		switch re, remote := errors.AsType[*errs.RemoteError](err); {
		case ct.capture:
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		case remote && re.Type != "":
			span.AddEvent("exception", trace.WithAttributes(attribute.String("exception.type", re.Type)))
			span.SetStatus(codes.Error, re.Type)
		default:
			span.SetStatus(codes.Error, category)
		}
	}
	span.End()
}

// errorCategory names an error the way the protocol's categories do.
func errorCategory(err error) string {
	if re, ok := errors.AsType[*errs.RemoteError](err); ok && re.Category != "" {
		return re.Category
	}
	for _, c := range []struct {
		err  error
		name string
	}{
		{ErrCancelled, "cancelled"}, {ErrTimeout, "timeout"}, {ErrWorkerExited, "worker_exited"},
		{ErrOverloaded, "overloaded"}, {ErrClosed, "closed"}, {ErrInvalidArgument, "invalid_argument"},
		{ErrProtocol, "protocol"}, {ErrStreamOverflow, "stream_overflow"},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "error"
}

// traceAttrs are the trace_id and span_id of the span in ctx, for slog records about a call
// (none when ctx holds no valid span context).
func traceAttrs(ctx context.Context) []slog.Attr {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return []slog.Attr{slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String())}
}

// logCall writes a record about the call (or typed operation) whose ctx it is, joined to its
// trace: trace_id and span_id of the span in ctx come first.
func (p *Pool) logCall(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	p.log.LogAttrs(ctx, level, msg, append(traceAttrs(ctx), attrs...)...)
}

// logLost records a call its worker failed, not its handler: the worker exited under it (and
// the call was not retried) or broke the protocol. Application errors are the caller's to log.
func (p *Pool) logLost(ctx context.Context, op string, pw *poolWorker, err error) {
	if err == nil || ctx.Err() != nil || !(errors.Is(err, ErrWorkerExited) || errors.Is(err, ErrProtocol)) {
		return
	}
	p.logCall(ctx, slog.LevelWarn, "mlbridge: call lost with its worker",
		slog.String("op", op), slog.Int("pid", pw.w.Pid()), slog.String("err", err.Error()))
}

// globalTracer serves TraceOperation for adapters that are not a *Pool. Made at first use, not
// at package init, so that the content switch set by main (os.Setenv) is seen.
var globalTracer = sync.OnceValue(func() *callTracer {
	return newCallTracer(nil, "", captureContent(os.Environ()))
})

func (p *Pool) operationTracer() *callTracer { return p.tracer }

// TraceOperation starts the span of a typed client's operation (dspy.Client.ExecuteProgram,
// ...) with a's tracer (a *Pool's TracerProvider, also through an adapter that wraps it and
// says so with an Unwrap() Adapter method; otherwise the global provider): the calls the
// operation makes are its children, and so are their Python handler spans. Call end with the
// operation's error. With no provider it starts nothing and returns ctx itself.
func TraceOperation(ctx context.Context, a Adapter, name string) (context.Context, func(error)) {
	ct := globalTracer()
	for a != nil { // through wrappers (adapters' deprecation counter) to the adapter they run on
		if t, ok := a.(interface{ operationTracer() *callTracer }); ok {
			ct = t.operationTracer()
			break
		}
		w, ok := a.(interface{ Unwrap() Adapter })
		if !ok {
			break
		}
		a = w.Unwrap()
	}
	tr, on := ct.tracer()
	if !on {
		return ctx, endNothing
	}
	ctx, span := tr.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal))
	return ctx, func(err error) { ct.end(span, err) }
}

func endNothing(error) {}
