package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/shm"
	"github.com/mlbridge/mlbridge/internal/wire"
)

// Call is one request in flight on a worker: a unary call completes once, a stream
// delivers chunks until it ends.
type Call struct {
	s      *session
	ctx    context.Context // the caller's, in the handler span: host calls made for this request inherit it
	span   trace.Span      // the handler span (span.go), ended once by endSpan; nil when untraced
	id     uint64
	op     string
	stream bool
	batch  int // a breq of this many items (batch.go); 0 for a req
	// a batch's callers, when they are several: the batch span is then the root of a trace
	// of its own, and a record about the batch's loss names their traces too (lostOf)
	linked []trace.SpanContext
	items  []ItemOutcome // a batch's answers, set before done closes

	done     chan struct{}
	finished atomic.Bool
	result   msgpack.RawMessage
	shared   *shm.Received // segments the result refers to (nil: none)
	err      error
	stopCtx  atomic.Pointer[func() bool] // unregisters the ctx watcher
	spanEnd  sync.Once                   // ends the handler span
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
	if !utf8.ValidString(op) {
		// the protocol's envelope strings are UTF-8: the worker would refuse the request as
		// a protocol error, though the bad input is the caller's (serve's /v1/call/%ff)
		return nil, fmt.Errorf("%w: op %q is not valid UTF-8", errs.ErrInvalidArgument, op)
	}
	deadline := wireDeadline(ctx)
	id := s.nextID.Add(1)
	enc := wire.GetEncoder()
	defer wire.PutEncoder(enc)
	// The encoder knows the limits while it encodes: args too big for a frame or nested too
	// deep are refused at the write that breaks the rule, before that write is copied.
	enc.SetMaxFrame(s.maxFrame)
	// the handler span: its context is the request's traceparent
	ctx, span := s.startHandlerSpan(ctx, op)
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
		err = fmt.Errorf("%w: op %q: %w", errs.ErrInvalidArgument, op, err)
		s.endHandlerSpan(span, err)
		return nil, err
	}
	c := &Call{s: s, ctx: ctx, span: span, id: id, op: op, stream: stream, done: make(chan struct{})}
	if stream {
		c.ready = make(chan struct{}, 1)
	}
	if err := s.start(ctx, c, frame, box); err != nil {
		return nil, err
	}
	return c, nil
}

// start registers c as pending, ties it to ctx and writes its frame, after passing box's
// shared-memory segments (box may be nil: none).
func (s *session) start(ctx context.Context, c *Call, frame []byte, box *outbox) error {
	var err error
	s.mu.Lock()
	switch {
	case s.pending == nil:
		err = s.deathErr
	case s.closing:
		err = errs.ErrClosed
	default:
		s.pending[c.id] = c
	}
	s.mu.Unlock()
	if err != nil {
		s.endHandlerSpan(c.span, err)
		return err
	}
	s.inFlight.Add(1)
	if ctx.Done() != nil {
		op := c.op
		stop := context.AfterFunc(ctx, func() { c.abort(opCtxError(op, ctx.Err())) })
		c.stopCtx.Store(&stop)
		if c.finished.Load() {
			stop() // completed (or aborted) before the watcher was stored
		}
	}
	if c.finished.Load() {
		return nil // ctx ended before the request left: don't send it at all
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
		if se, ok := err.(*sharedSendError); ok && !s.channelBroken(se.err) { // the frame was not written: only this call fails
			s.take(c.id)
			err = fmt.Errorf("%w: op %q: %w", errs.ErrSerialization, c.op, se.err)
			c.finish(nil, err)
			return err
		}
		// The pipe (or the segment channel) broke: the worker is dying; its death error says why.
		s.take(c.id)
		s.awaitDeath(err)
		c.finish(nil, s.Err())
		return s.Err()
	}
	return nil
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
	c.endSpan(err) // before the caller wakes: its client span ends after this one
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
	c.endSpan(err) // now: the write below may wait for a busy pipe
	// The cancel is written before the caller wakes, so anything the caller sends next
	// reaches Python after it.
	enc := wire.GetEncoder()
	_ = c.s.writeFrame(enc.Cancel(c.id))
	wire.PutEncoder(enc)
	c.finish(nil, err)
}

// endSpan ends the handler span once, with the first outcome known (an answer, an abort,
// the worker's death, or the caller's ctx ending while it waits); a concurrent caller returns
// once it has ended.
func (c *Call) endSpan(err error) {
	if c.span != nil {
		c.spanEnd.Do(func() { c.s.endHandlerSpan(c.span, err) })
	}
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
		if c.ctx.Err() != nil {
			// The call's own ctx ended: its watcher aborts the call. Its handler span ends
			// here already, so that it ends before the caller's span does.
			c.endSpan(opCtxError(c.op, c.ctx.Err()))
		}
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

// channelBroken says whether a segment send failed on the channel itself: the worker's end is
// gone (it died, or the session closed the channel as it died), or the worker did not drain it in
// time (sendTimeout), leaving part of the segments queued. The call then fails as any call to a
// dead worker does (ErrWorkerExited, which a pool places again), not as a serialization error.
func (s *session) channelBroken(err error) bool {
	var ce *channelError
	return errors.As(err, &ce)
}

// awaitDeath waits for the session to die after a write (err) broke. A worker whose segment
// channel broke but lives on is killed: at once when it did not drain the channel in time,
// after a while when its end is gone (it is normally dying already, and its own death says why).
func (s *session) awaitDeath(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.peer.kill(fmt.Sprintf("the segment channel was not drained for %s", sendTimeout))
		<-s.done
		return
	}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-s.done:
		return
	case <-t.C:
		s.peer.kill("the segment channel broke")
	}
	<-s.done
}

// sharedSendError: passing a request's segments failed, before any of its frame was written.
type sharedSendError struct{ err error }

func (e *sharedSendError) Error() string { return e.err.Error() }
func (e *sharedSendError) Unwrap() error { return e.err }

// wireDeadline is ctx's deadline as a request carries it (ms since the epoch; 0: none), rounded
// up: Python must not give up before the Go ctx does.
func wireDeadline(ctx context.Context) uint64 {
	if d, ok := ctx.Deadline(); ok {
		return uint64((d.UnixMicro() + 999) / 1000)
	}
	return 0
}
