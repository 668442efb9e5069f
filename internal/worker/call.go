package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/shm"
	"github.com/mlbridge/mlbridge/internal/wire"
)

// Call is one request in flight on a worker: a unary call completes once, a stream
// delivers chunks until it ends.
type Call struct {
	s      *session
	ctx    context.Context // the caller's: host calls made for this request inherit it
	id     uint64
	op     string
	stream bool

	done     chan struct{}
	finished atomic.Bool
	result   msgpack.RawMessage
	shared   *shm.Received // segments the result refers to (nil: none)
	err      error
	stopCtx  atomic.Pointer[func() bool] // unregisters the ctx watcher
	hosted   atomic.Bool                 // Python made host calls for this request (hostcall.go)

	// Stream state. The read loop never blocks on a slow consumer: chunks queue here,
	// bounded in bytes by Config.MaxStreamBuffer.
	smu    sync.Mutex
	queue  []msgpack.RawMessage
	queued int
	ready  chan struct{} // capacity 1: "something changed"
}

// Send starts op on the worker. ctx governs the call: its deadline travels to Python as
// the request deadline, its span (if any) as the request's trace context, and its cancellation sends a cancel frame and completes the call
// with ErrTimeout or ErrCancelled at once.
func (s *session) Send(ctx context.Context, op string, args any, stream bool) (*Call, error) {
	if err := ctx.Err(); err != nil {
		return nil, opCtxError(op, err)
	}
	var deadline uint64
	if d, ok := ctx.Deadline(); ok {
		// Rounded up: Python must not give up before the Go ctx does.
		deadline = uint64((d.UnixMicro() + 999) / 1000)
	}
	id := s.nextID.Add(1)
	enc := wire.GetEncoder()
	defer wire.PutEncoder(enc)
	// The encoder knows the limits while it encodes: args too big for a frame or nested too
	// deep are refused at the write that breaks the rule, before that write is copied.
	enc.SetMaxFrame(s.maxFrame)
	var box *outbox
	if s.shm != nil && !stream {
		box = &outbox{s: s}
		enc.SetSink(box)
	}
	// The segments the host created are its to free once sent (or never sent): the worker
	// holds its own references from the moment they are passed.
	defer box.done()
	frame, err := enc.ReqTraced(id, op, args, deadline, stream, traceOf(ctx))
	if err != nil {
		return nil, fmt.Errorf("%w: op %q: %w", errs.ErrInvalidArgument, op, err)
	}
	c := &Call{s: s, ctx: ctx, id: id, op: op, stream: stream, done: make(chan struct{})}
	if stream {
		c.ready = make(chan struct{}, 1)
	}
	s.mu.Lock()
	switch {
	case s.pending == nil:
		err = s.deathErr
	case s.closing:
		err = errs.ErrClosed
	default:
		s.pending[id] = c
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.inFlight.Add(1)
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { c.abort(opCtxError(op, ctx.Err())) })
		c.stopCtx.Store(&stop)
		if c.finished.Load() {
			stop() // completed (or aborted) before the watcher was stored
		}
	}
	if c.finished.Load() {
		return c, nil // ctx ended before the request left: don't send it at all
	}
	s.expectBusy(len(frame) + box.busyBytes())
	var before func() error
	if box != nil && len(box.segs) > 0 {
		before = func() error {
			if err := box.send(); err != nil {
				return &sharedSendError{err}
			}
			return nil
		}
	}
	if err := s.writeFrameAfter(frame, before); err != nil {
		if se, ok := err.(*sharedSendError); ok { // the frame was not written: only this call fails
			s.take(id)
			err = fmt.Errorf("%w: op %q: %w", errs.ErrSerialization, op, se.err)
			c.finish(nil, err)
			return nil, err
		}
		// The pipe broke: the worker is dying; its death error says why.
		s.take(id)
		<-s.done
		c.finish(nil, s.Err())
		return nil, s.Err()
	}
	return c, nil
}

// CtxError wraps a context error with the matching mlbridge sentinel, so callers can test
// either errors.Is(err, mlbridge.ErrTimeout) or errors.Is(err, context.DeadlineExceeded).
// what says what was interrupted ("op \"x\"", "waiting for a worker").
func CtxError(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", what, errs.ErrTimeout, err)
	}
	return fmt.Errorf("%s: %w: %w", what, errs.ErrCancelled, err)
}

func opCtxError(op string, err error) error { return CtxError(fmt.Sprintf("op %q", op), err) }

func (s *session) take(id uint64) *Call {
	s.mu.Lock()
	c := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	return c
}

func (s *session) lookup(id uint64) *Call {
	s.mu.Lock()
	c := s.pending[id]
	s.mu.Unlock()
	return c
}

// finish completes the call once; later completions are ignored.
func (c *Call) finish(result msgpack.RawMessage, err error) bool {
	return c.complete(result, nil, err)
}

// finishShared completes the call with a result whose arrays are in shared segments; false if
// the call had completed already (the caller then releases the segments).
func (c *Call) finishShared(result msgpack.RawMessage, shared *shm.Received) bool {
	return c.complete(result, shared, nil)
}

// Shared is the segments the result refers to, nil if none; valid once Done is closed.
func (c *Call) Shared() *shm.Received {
	select {
	case <-c.done:
		return c.shared
	default:
		return nil
	}
}

func (c *Call) complete(result msgpack.RawMessage, shared *shm.Received, err error) bool {
	if !c.finished.CompareAndSwap(false, true) {
		return false
	}
	c.result, c.shared, c.err = result, shared, err
	if stop := c.stopCtx.Load(); stop != nil {
		(*stop)()
	}
	c.s.inFlight.Add(-1)
	close(c.done)
	if c.stream {
		c.signal()
	}
	if c.hosted.Load() {
		c.endHostCalls()
	}
	return true
}

// abort completes the call with err and tells Python to stop working on it.
func (c *Call) abort(err error) {
	if c.s.take(c.id) == nil {
		return // already answered or the worker died
	}
	// The cancel is written before the caller wakes, so anything the caller sends next
	// reaches Python after it.
	enc := wire.GetEncoder()
	_ = c.s.writeFrame(enc.Cancel(c.id))
	wire.PutEncoder(enc)
	c.finish(nil, err)
}

// Cancel abandons the call; Python is told to stop. It is a no-op once the call completed.
func (c *Call) Cancel() { c.abort(opCtxError(c.op, context.Canceled)) }

// Done is closed when the call completed.
func (c *Call) Done() <-chan struct{} { return c.done }

// Result waits for a unary call's result, or for ctx.
func (c *Call) Result(ctx context.Context) (msgpack.RawMessage, error) {
	select {
	case <-c.done:
		return c.result, c.err
	default:
	}
	select {
	case <-c.done:
		return c.result, c.err
	case <-ctx.Done():
		return nil, opCtxError(c.op, ctx.Err())
	}
}

// push queues one chunk of a stream.
func (c *Call) push(data msgpack.RawMessage) {
	c.smu.Lock()
	c.queue = append(c.queue, data)
	c.queued += len(data)
	over := c.queued > c.s.cfg.MaxStreamBuffer
	c.smu.Unlock()
	if over {
		c.abort(fmt.Errorf("op %q: %w (%d bytes)", c.op, errs.ErrStreamOverflow, c.s.cfg.MaxStreamBuffer))
		return
	}
	c.signal()
}

func (c *Call) signal() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// Next returns the next chunk of a stream. ok is false once the stream ended; err is then
// its error (nil for a clean end). Chunks that arrived before an error are still delivered.
func (c *Call) Next() (data msgpack.RawMessage, ok bool, err error) {
	for {
		c.smu.Lock()
		if len(c.queue) > 0 {
			data = c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.queued -= len(data)
			c.smu.Unlock()
			return data, true, nil
		}
		c.smu.Unlock()
		select {
		case <-c.done:
			// Re-check: a chunk may have been pushed just before the end.
			c.smu.Lock()
			n := len(c.queue)
			c.smu.Unlock()
			if n == 0 {
				return nil, false, c.err
			}
		case <-c.ready:
		}
	}
}

// sharedSendError: passing a request's segments failed, before any of its frame was written.
type sharedSendError struct{ err error }

func (e *sharedSendError) Error() string { return e.err.Error() }
