package worker

import (
	"context"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/wire"
)

// ItemOutcome is one item's answer from a batch: Result when Err is nil.
type ItemOutcome struct {
	Result msgpack.RawMessage
	Err    error
}

// SendBatch starts op on the worker for several calls at once (a breq): items are their
// arguments, each encoded by wire.Encoder.Args. ctx governs the whole batch, as Send's does
// a call: its deadline travels to Python and its end cancels the batch. callers are the
// spans of the batch's traced callers (none: the batch is not traced); with HandlerSpans
// that trace, the batch's handler span, linked to them, is the breq's trace context, and
// either way a record of the worker's death names their traces (LostCalls). BatchResults
// waits for the answers.
func (s *session) SendBatch(ctx context.Context, op string, items []msgpack.RawMessage, callers []trace.Span) (*Call, error) {
	if err := ctx.Err(); err != nil {
		return nil, opCtxError(op, err)
	}
	deadline := wireDeadline(ctx)
	id := s.nextID.Add(1)
	enc := wire.GetEncoder()
	defer wire.PutEncoder(enc)
	enc.SetMaxFrame(s.maxFrame)
	ctx, span := s.startBatchSpan(ctx, op, len(items), callers)
	tr := traceOf(ctx)
	if len(tr.State) > maxBatchTraceState {
		tr.State = "" // wire.BatchOverhead leaves room for what W3C bounds, no more
	}
	frame, err := enc.BReq(id, op, items, deadline, tr)
	if err != nil {
		err = fmt.Errorf("%w: op %q: a batch of %d: %w", errs.ErrInvalidArgument, op, len(items), err)
		s.endHandlerSpan(span, err)
		return nil, err
	}
	c := &Call{s: s, ctx: ctx, span: span, id: id, op: op, batch: len(items), done: make(chan struct{})}
	if span == nil || len(callers) > 1 {
		// the batch's ctx holds no caller's span: untraced here (the callers' spans may
		// come from another provider), or the root of a trace of its own
		for _, sp := range callers {
			c.linked = append(c.linked, sp.SpanContext())
		}
	}
	if err := s.start(ctx, c, frame, nil); err != nil {
		return nil, err
	}
	return c, nil
}

// maxBatchTraceState is the longest tracestate a breq carries: W3C's bound (512), which
// wire.BatchOverhead reserves.
const maxBatchTraceState = 512

// finishBatch completes a batch call with its items' answers; a count that does not match
// the batch fails every item with a protocol error.
func (c *Call) finishBatch(results []wire.ItemResult) {
	if c.batch == 0 {
		c.finish(nil, fmt.Errorf("%w: op %q: a bres answered a call that is not a batch", errs.ErrProtocol, c.op))
		return
	}
	if len(results) != c.batch {
		c.finish(nil, fmt.Errorf("%w: op %q: %d results for a batch of %d", errs.ErrProtocol, c.op, len(results), c.batch))
		return
	}
	out := make([]ItemOutcome, len(results))
	for i, r := range results {
		if r.OK {
			out[i].Result = r.Result
		} else {
			out[i].Err = &errs.RemoteError{
				Op: c.op, Category: r.Error.Category, Type: r.Error.Type,
				Message: r.Error.Message, Traceback: r.Error.Traceback,
			}
		}
	}
	c.items = out
	c.finish(nil, nil)
}

// BatchResults waits for a batch's answers, one per item in order, or for ctx. An error is
// the batch's as a whole (the worker died, the batch was cancelled or refused): every item
// shares it.
func (c *Call) BatchResults(ctx context.Context) ([]ItemOutcome, error) {
	select {
	case <-c.done:
		return c.items, c.err
	case <-ctx.Done():
		return nil, opCtxError(c.op, ctx.Err())
	}
}
