package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/wire"
)

// HostFuncs serves the calls a worker makes of functions the host registered (hcall).
type HostFuncs interface {
	// CallHost runs the function name with args (a msgpack map, or nil). ctx is the
	// request's the call was made for: its deadline, cancellation, span and callback depth.
	// An unknown name is an error matching errs.ErrNotFound.
	CallHost(ctx context.Context, name string, args msgpack.RawMessage) (any, error)
	// Announce is the host hello's host_funcs map ({name: {description, schema}}) in
	// msgpack, or nil when there are none.
	Announce() msgpack.RawMessage
}

// DefaultMaxCallbackDepth bounds how deep host calls nest (Go → Python → Go → ...).
const DefaultMaxCallbackDepth = 4

type depthKey struct{}

// CallbackDepth is the number of host calls ctx is nested in: 0 outside any callback.
func CallbackDepth(ctx context.Context) int {
	d, _ := ctx.Value(depthKey{}).(int)
	return d
}

// WithCallbackDepth sets the depth CallbackDepth reports: for a host call that arrived over
// another transport (mlnats), whose depth the caller said.
func WithCallbackDepth(ctx context.Context, depth int) context.Context {
	return context.WithValue(ctx, depthKey{}, depth)
}

// hostCall starts one hcall. It runs on the read loop, so the function itself runs on its own
// goroutine: a slow callback, or one that calls Python again, never stalls the loop.
func (s *session) hostCall(m *wire.Message) {
	id, name, args := m.ID, m.Fn, m.Args
	if s.cfg.HostFuncs == nil {
		s.answerHost(id, nil, fmt.Errorf("%w: host function %q: the host registered none", errs.ErrNotFound, name))
		return
	}
	parent := s.lookup(m.Parent)
	if parent == nil || parent.ctx == nil {
		// the request finished (or was cancelled) before its call arrived
		s.answerHost(id, nil, fmt.Errorf("host function %q: %w: request %d is not in flight", name, errs.ErrCancelled, m.Parent))
		return
	}
	depth := CallbackDepth(parent.ctx) + 1
	if max := s.cfg.MaxCallbackDepth; depth > max {
		s.answerHost(id, nil, fmt.Errorf("host function %q: %w (%d)", name, errs.ErrCallbackDepth, max))
		return
	}
	ctx, cancel := context.WithCancel(context.WithValue(parent.ctx, depthKey{}, depth))
	parent.hosted.Store(true)
	s.mu.Lock()
	if s.hcalls == nil {
		s.hcalls = map[uint64]hostCallEntry{}
	}
	s.hcalls[id] = hostCallEntry{cancel: cancel, parent: parent}
	s.mu.Unlock()
	// The call ends with its request: a cancelled or finished request cancels it, even when
	// the request's own ctx lives on (a stream the caller stopped, a Cancel). finish does it
	// for the calls registered before it; this, for a request that finished just before.
	select {
	case <-parent.done:
		parent.endHostCall(cancel)
	default:
	}
	go func() {
		res, err := s.cfg.HostFuncs.CallHost(ctx, name, args)
		if err == nil && ctx.Err() != nil {
			err = CtxError(fmt.Sprintf("host function %q", name), ctx.Err())
		}
		s.mu.Lock()
		delete(s.hcalls, id)
		s.mu.Unlock()
		cancel()
		s.answerHost(id, res, err)
	}()
}

// hostCallEntry is one host call running: how to cancel it, and for which request.
type hostCallEntry struct {
	cancel context.CancelFunc
	parent *Call
}

// endHostCalls cancels the host calls made for c, which just finished (finish calls it when
// c made any).
func (c *Call) endHostCalls() {
	var cancels []context.CancelFunc
	c.s.mu.Lock()
	for _, h := range c.s.hcalls {
		if h.parent == c {
			cancels = append(cancels, h.cancel)
		}
	}
	c.s.mu.Unlock()
	for _, cancel := range cancels {
		c.endHostCall(cancel)
	}
}

// endHostCall cancels one host call of finished request c. A request that Python timed out
// ends a hair before its Go deadline (the worker's timer may fire early by its clock
// resolution): its calls are then left to reach that deadline (a few ms at most) on their own,
// so that their ctx ends with DeadlineExceeded, as it should, not Canceled.
func (c *Call) endHostCall(cancel context.CancelFunc) {
	if d, ok := c.ctx.Deadline(); ok && errors.Is(c.err, errs.ErrTimeout) && time.Until(d) < 50*time.Millisecond {
		return
	}
	cancel()
}

// cancelHostCall: the worker stopped waiting for call id (hcancel).
func (s *session) cancelHostCall(id uint64) {
	s.mu.Lock()
	h, ok := s.hcalls[id]
	s.mu.Unlock()
	if !ok {
		return
	}
	select {
	case <-h.parent.done:
		// Python gave up because the request ended (its res came first, on the same stream):
		// a timed-out request lets the call reach its deadline, as finish does
		h.parent.endHostCall(h.cancel)
	default:
		h.cancel()
	}
}

// answerHost writes the hres of call id. The worker drops answers to calls it no longer waits for.
func (s *session) answerHost(id uint64, res any, err error) {
	enc := wire.GetEncoder()
	defer wire.PutEncoder(enc)
	if err == nil {
		enc.SetMaxFrame(s.maxFrame)
		frame, encErr := enc.HRes(id, res)
		if encErr == nil {
			_ = s.writeFrame(frame)
			return
		}
		err = fmt.Errorf("%w: the host function's result: %w", errs.ErrSerialization, encErr)
	}
	_ = s.writeFrame(enc.HResError(id, HostErrorInfo(err)))
}

// HostErrorInfo is the wire error of a failed host call: its category from the mlbridge sentinel
// err matches (a Python error that came back through Go keeps its own), else internal.
func HostErrorInfo(err error) wire.ErrorInfo {
	var re *errs.RemoteError
	if errors.As(err, &re) {
		// the Python message itself, after what Go code added around it (not the Go
		// rendering of it, which would nest one "mlbridge: op: category: type:" per level)
		msg := strings.TrimSuffix(err.Error(), re.Error()) + re.Message
		return wire.ErrorInfo{Category: re.Category, Type: re.Type, Message: msg, Traceback: re.Traceback}
	}
	typ := "HostError"
	if errors.Is(err, errs.ErrCallbackDepth) {
		typ = "CallbackDepthExceeded"
	}
	return wire.ErrorInfo{Category: errs.CategoryOf(err), Type: typ, Message: err.Error()}
}
