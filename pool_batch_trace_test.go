package mlbridge_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge"
)

// tracedDouble is double's answer with the ids current in the batched handler.
type tracedDouble struct {
	Batch   int    `msgpack:"batch"`
	TraceID string `msgpack:"trace_id"`
	SpanID  string `msgpack:"span_id"`
}

// TestBatchTrace: a batch carries a trace context. The batch's handler span (server kind,
// mlbridge.batch.size) is what Python's batched handler runs in; with several traced
// callers it is the root of its own trace, linked to every caller's client span, and each
// client span links back to it; with one traced caller it is that caller's child, as a plain
// call's handler span is.
func TestBatchTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	p := openBatchPool(t, func(c *mlbridge.PoolConfig) { c.TracerProvider = tp })

	// clientSpan is the finished client span whose trace is tid.
	clientSpan := func(t *testing.T, tid trace.TraceID) tracetest.SpanStub {
		t.Helper()
		for _, s := range exp.GetSpans() {
			if s.SpanKind == trace.SpanKindClient && s.SpanContext.TraceID() == tid {
				return s
			}
		}
		t.Fatalf("no client span in trace %s", tid)
		return tracetest.SpanStub{}
	}
	spanByID := func(t *testing.T, sid string) tracetest.SpanStub {
		t.Helper()
		for _, s := range exp.GetSpans() {
			if s.SpanContext.SpanID().String() == sid {
				return s
			}
		}
		t.Fatalf("no span %s exported", sid)
		return tracetest.SpanStub{}
	}

	t.Run("several callers", func(t *testing.T) {
		exp.Reset()
		const n = 8 // the declared max size: the batch goes when full, with all of them
		outs := make([]tracedDouble, n)
		errs := make([]error, n)
		roots := callInTracesOfTheirOwn(tp, n, func(ctx context.Context, i int) {
			outs[i], errs[i] = mlbridge.Decode[tracedDouble](p.Call(ctx, "double", map[string]any{"x": i, "ids": true}))
		})
		batchSpans := map[string]bool{}
		for i, out := range outs {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if out.SpanID == "" {
				t.Fatalf("caller %d: the batched handler ran in no span: %+v", i, out)
			}
			batchSpans[out.SpanID] = true
			bs := spanByID(t, out.SpanID)
			if bs.SpanKind != trace.SpanKindServer || bs.Name != "double" || stubAttr(bs, "mlbridge.batch.size").AsInt64() != int64(out.Batch) {
				t.Errorf("batch span %s kind %v size %v, want a server span double of size %d", bs.Name, bs.SpanKind, stubAttr(bs, "mlbridge.batch.size"), out.Batch)
			}
			if bs.SpanContext.TraceID().String() != out.TraceID {
				t.Errorf("Python saw trace %s, the batch span is in %s", out.TraceID, bs.SpanContext.TraceID())
			}
			cs := clientSpan(t, roots[i])
			if out.Batch == 1 {
				if bs.Parent.SpanID() != cs.SpanContext.SpanID() {
					t.Errorf("a batch of one: its span's parent %s, want the client span %s", bs.Parent.SpanID(), cs.SpanContext.SpanID())
				}
				continue
			}
			if bs.Parent.IsValid() {
				t.Errorf("a batch of %d: its span has a parent (%s), want a root linked to its callers", out.Batch, bs.Parent.SpanID())
			}
			if !slices.ContainsFunc(bs.Links, func(l sdktrace.Link) bool { return l.SpanContext.SpanID() == cs.SpanContext.SpanID() }) {
				t.Errorf("caller %d: the batch span has no link to its client span", i)
			}
			if !slices.ContainsFunc(cs.Links, func(l sdktrace.Link) bool { return l.SpanContext.SpanID() == bs.SpanContext.SpanID() }) {
				t.Errorf("caller %d: its client span has no link to the batch span", i)
			}
		}
		if len(batchSpans) == n {
			t.Errorf("every call ran in a batch of its own (%d batch spans): no batch formed", n)
		}
	})

	t.Run("one caller", func(t *testing.T) {
		exp.Reset()
		out, err := mlbridge.Decode[tracedDouble](p.Call(context.Background(), "double", map[string]any{"x": 1, "ids": true}))
		if err != nil || out.Batch != 1 {
			t.Fatalf("%+v, %v", out, err)
		}
		bs := spanByID(t, out.SpanID)
		cs := clientSpan(t, bs.SpanContext.TraceID())
		if bs.Parent.SpanID() != cs.SpanContext.SpanID() || len(bs.Links) != 0 {
			t.Errorf("batch span parent %s links %d, want the client span %s and no link", bs.Parent.SpanID(), len(bs.Links), cs.SpanContext.SpanID())
		}
	})

	t.Run("untraced", func(t *testing.T) {
		exp.Reset()
		q := openBatchPool(t) // no provider: the global no-op one
		out, err := mlbridge.Decode[tracedDouble](q.Call(context.Background(), "double", map[string]any{"x": 1, "ids": true}))
		if err != nil || out.SpanID != "" {
			t.Fatalf("untraced batch: %+v, %v; want no span in Python", out, err)
		}
	})
}

// TestBatchDeathLogsCallersTraces: a worker killed with a batch of several traced callers in
// flight logs records joined to every caller's trace: the batch's loss and the worker's death
// both list their trace ids — when the pool traces (the batch span then roots a trace of its
// own) and when it does not (the callers' spans come from the application's own provider),
// as a lost call's records do.
func TestBatchDeathLogsCallersTraces(t *testing.T) {
	for _, poolTraces := range []bool{true, false} {
		t.Run(fmt.Sprintf("pool traces %v", poolTraces), func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			logs := &logCapture{}
			p := openBatchPool(t, func(c *mlbridge.PoolConfig) {
				c.Size, c.Logger = 1, slog.New(logs)
				if poolTraces {
					c.TracerProvider = tp
				}
			}, withPolicy(mlbridge.BatchPolicy{MaxWait: 300 * time.Millisecond}))
			victim := pids(p)[0]
			const n = 4
			done := make(chan struct{})
			defer close(done)
			go func() { // once all of them are on the worker (in one batch, checked below)
				for deadline := time.Now().Add(30 * time.Second); p.Stats().Batching["double"].Calls < n; {
					select {
					case <-done:
						return
					case <-time.After(10 * time.Millisecond):
					}
					if time.Now().After(deadline) {
						t.Errorf("the %d calls were not all sent within 30 s", n)
						return
					}
				}
				_ = syscall.Kill(victim, syscall.SIGKILL)
			}()
			traces := callInTracesOfTheirOwn(tp, n, func(ctx context.Context, i int) {
				if _, err := p.Call(ctx, "double", map[string]any{"x": i, "sleep": 30.0}); !errors.Is(err, mlbridge.ErrWorkerExited) {
					t.Errorf("caller %d: %v, want ErrWorkerExited", i, err)
				}
			})
			if sizes := p.Stats().Batching["double"]; sizes.Batches != 1 {
				t.Fatalf("%d batches, want the %d calls in one: %+v", sizes.Batches, n, sizes)
			}
			for _, msg := range []string{"mlbridge: batch lost with its worker", "mlbridge: worker exited"} {
				rec := waitRecord(t, logs, msg)
				for i, id := range traces {
					if !strings.Contains(rec["trace_ids"], id.String()) {
						t.Errorf("%q: trace_ids %q lacks caller %d's trace %s", msg, rec["trace_ids"], i, id)
					}
				}
			}
		})
	}
}

// callInTracesOfTheirOwn runs call from n goroutines at once, caller i in a root span of a
// trace of its own, and returns each caller's trace id once all have returned.
func callInTracesOfTheirOwn(tp trace.TracerProvider, n int, call func(ctx context.Context, i int)) []trace.TraceID {
	tracer := tp.Tracer("test")
	roots := make([]trace.TraceID, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, span := tracer.Start(context.Background(), "caller")
			defer span.End()
			roots[i] = span.SpanContext().TraceID()
			call(ctx, i)
		})
	}
	wg.Wait()
	return roots
}
