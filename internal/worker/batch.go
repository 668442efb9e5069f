package worker

import (
	"context"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

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
// a call: its deadline travels to Python and its end cancels the batch. BatchResults waits
// for the answers.
func (s *session) SendBatch(ctx context.Context, op string, items []msgpack.RawMessage) (*Call, error) {
	if err := ctx.Err(); err != nil {
		return nil, opCtxError(op, err)
	}
	deadline := wireDeadline(ctx)
	id := s.nextID.Add(1)
	enc := wire.GetEncoder()
	defer wire.PutEncoder(enc)
	enc.SetMaxFrame(s.maxFrame)
	frame, err := enc.BReq(id, op, items, deadline)
	if err != nil {
		return nil, fmt.Errorf("%w: op %q: a batch of %d: %w", errs.ErrInvalidArgument, op, len(items), err)
	}
	c := &Call{s: s, ctx: ctx, id: id, op: op, batch: len(items), done: make(chan struct{})}
	if err := s.start(ctx, c, frame, nil); err != nil {
		return nil, err
	}
	return c, nil
}

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
