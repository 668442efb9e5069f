package mlbridge

import (
	"context"

	"github.com/mlbridge/mlbridge/internal/worker"
)

// Future is a call started by Submit. It is safe to use from many goroutines.
type Future struct {
	// A Bridge's future is its worker call; a Pool's completes from the goroutine that
	// waits for a worker (then done, res and err are set).
	call *worker.Call
	err  error // the call could not be sent

	done   chan struct{}
	res    Result
	cancel context.CancelFunc
}

func newAsyncFuture() *Future { return &Future{done: make(chan struct{})} }

// FailedFuture returns a Future that has already completed with err: for an Adapter wrapper
// that refuses a call before it starts.
func FailedFuture(err error) *Future { return &Future{err: err} }

func (f *Future) complete(res Result, err error) {
	f.res, f.err = res, err
	close(f.done)
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Done is closed once the call completed (or could not start).
func (f *Future) Done() <-chan struct{} {
	if f.done != nil {
		return f.done
	}
	if f.call == nil {
		return closedChan
	}
	return f.call.Done()
}

// Wait returns the call's result. If ctx ends first Wait returns ctx's error, and the call
// itself goes on: it is governed by the ctx given to Submit.
func (f *Future) Wait(ctx context.Context) (Result, error) {
	if f.done != nil {
		select {
		case <-f.done:
			return f.res, f.err
		case <-ctx.Done():
			return Result{}, worker.CtxError("waiting for the result", ctx.Err())
		}
	}
	if f.call == nil {
		return Result{}, f.err
	}
	return resultOf(ctx, f.call)
}

// Cancel stops the call, in Python too. It is a no-op once the call completed.
func (f *Future) Cancel() {
	if f.cancel != nil {
		f.cancel()
	}
	if f.call != nil {
		f.call.Cancel()
	}
}
