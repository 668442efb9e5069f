package mlnats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/wire"
	"github.com/mlbridge/mlbridge/internal/worker"
)

// hostServer runs a Remote's host functions for the nodes its calls went to: the Go side of
// a Python handler's host.call on a remote node (docs/DISTRIBUTED.md, "Host functions").
// It listens on one private inbox, named in every request the Remote sends.
type hostServer struct {
	nc      *nats.Conn
	subject string
	funcs   map[string]mlbridge.HostFunc
	prop    propagation.TextMapPropagator
	log     *slog.Logger
	sub     *nats.Subscription
	// blobs is the Remote's values' store: arguments and results over the max payload
	// cross through it (blobs.go).
	blobs *blobs
	// origin is the ctx of the Remote's call whose reply subject is given, or nil once it
	// ended: a function's ctx derives from the call Python made it for.
	origin func(reply string) context.Context

	// base ends when the Remote closes: every function still running is cancelled.
	base context.Context
	stop context.CancelFunc

	mu    sync.Mutex
	calls map[string]hostCall // by the host call's reply subject, for cancels
}

// hostCall is a function running for a node.
type hostCall struct {
	cancel      context.CancelFunc
	deadline    time.Time
	hasDeadline bool
}

// deadlineGrace: a cancel this close to the deadline is left to the deadline (receive).
const deadlineGrace = 50 * time.Millisecond

func newHostServer(nc *nats.Conn, b *blobs, funcs []mlbridge.HostFunc, origin func(string) context.Context, prop propagation.TextMapPropagator, log *slog.Logger) (*hostServer, error) {
	s := &hostServer{nc: nc, subject: nc.NewInbox(), funcs: make(map[string]mlbridge.HostFunc, len(funcs)),
		origin: origin, prop: prop, log: log, blobs: b, calls: map[string]hostCall{}}
	for _, f := range funcs {
		switch _, dup := s.funcs[f.Name()]; {
		case f.Name() == "":
			return nil, fmt.Errorf("mlnats: %w: a host function without a name (make them with mlbridge.Func)", mlbridge.ErrInvalidConfiguration)
		case dup:
			return nil, fmt.Errorf("mlnats: %w: two host functions named %q", mlbridge.ErrInvalidConfiguration, f.Name())
		}
		s.funcs[f.Name()] = f
	}
	s.base, s.stop = context.WithCancel(context.Background())
	sub, err := nc.Subscribe(s.subject, s.receive)
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("mlnats: host functions' subject: %w", err)
	}
	s.sub = sub
	return s, nil
}

func (s *hostServer) close() error {
	s.stop()
	return s.sub.Unsubscribe()
}

// receive starts a call, or cancels one. It runs on the subscription's goroutine, so a
// cancel that follows a call always finds it registered.
func (s *hostServer) receive(m *nats.Msg) {
	if m.Header.Get(hCtl) == ctlCancel {
		s.mu.Lock()
		c, ok := s.calls[m.Header.Get(hID)]
		s.mu.Unlock()
		// A cancel that comes at the deadline is the call's timeout seen first on the node
		// (our deadline timer may run late under load, Python's may fire a hair early): the
		// function's ctx is left to end with DeadlineExceeded, as locally, not Canceled.
		if ok && !(c.hasDeadline && time.Until(c.deadline) < deadlineGrace) {
			c.cancel()
		}
		return
	}
	if m.Reply == "" {
		return // nobody to answer
	}
	h := m.Header
	name := h.Get(hFn)
	parent := s.origin(h.Get(hID))
	if parent == nil {
		go s.answer(context.Background(), m.Reply, name, nil, fmt.Errorf("host function %q: %w: the call it was made for has ended", name, mlbridge.ErrCancelled))
		return
	}
	// The call's own ctx, as locally: its deadline, cancellation and values; the span is the
	// node's (the Python handler's), in the call's trace.
	ctx, cancel := context.WithCancel(extract(parent, s.prop, h))
	stopAfter := context.AfterFunc(s.base, cancel)
	if d, err := strconv.Atoi(h.Get(hDepth)); err == nil && d > 0 {
		ctx = worker.WithCallbackDepth(ctx, d)
	}
	c := hostCall{cancel: cancel}
	c.deadline, c.hasDeadline = ctx.Deadline()
	s.mu.Lock()
	s.calls[m.Reply] = c
	s.mu.Unlock()
	go s.run(ctx, func() { stopAfter(); cancel() }, m)
}

func (s *hostServer) run(ctx context.Context, cancel context.CancelFunc, m *nats.Msg) {
	defer func() {
		s.mu.Lock()
		delete(s.calls, m.Reply)
		s.mu.Unlock()
		cancel()
	}()
	name := m.Header.Get(hFn)
	stopHB := beat(s.nc, m.Reply, m.Header.Get(hHB), func() nats.Header { return nats.Header{hKind: {kindHB}} }, nil)
	var res any
	var err error
	if f, ok := s.funcs[name]; ok {
		res, err = s.invoke(ctx, f, m)
	} else {
		err = fmt.Errorf("%w: the calling client has no host function named %q", mlbridge.ErrNotFound, name)
	}
	// A result over the max payload is stored before the heartbeats stop: a large write
	// takes a while too, and silence would have the node give up on this client.
	msg, ref := s.encode(ctx, m.Reply, name, res, err, m.Header.Get(hHostBlobs) == "1")
	stopHB()
	s.send(msg, ref, name)
}

// invoke runs f on m's arguments. Arguments over the max payload are in the Object Store,
// read while the heartbeats run (a large read takes a while); the node deletes them when its
// host call ends.
func (s *hostServer) invoke(ctx context.Context, f mlbridge.HostFunc, m *nats.Msg) (any, error) {
	name := f.Name()
	args, _, err := s.blobs.unpack(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("host function %q: its arguments: %w", name, hostBlobErr(err))
	}
	res, err := f.Invoke(ctx, args)
	if err == nil && ctx.Err() != nil {
		err = ctxErr(fmt.Sprintf("host function %q", name), ctx.Err())
	}
	return res, err
}

// answer sends a host function's result, or its error as a node sends errors.
func (s *hostServer) answer(ctx context.Context, reply, name string, res any, err error) {
	msg, ref := s.encode(ctx, reply, name, res, err, false) // an error: nothing to store
	s.send(msg, ref, name)
}

// encode makes the answer to a host call: its result (through the Object Store when over
// the max payload and the node reads stored results, store: ref names that copy; a node of
// an older version gets it inline, or the typed error when too big) or its error.
func (s *hostServer) encode(ctx context.Context, reply, name string, res any, err error, store bool) (msg *nats.Msg, ref string) {
	var data []byte
	h := nats.Header{hKind: {kindRes}}
	if err == nil {
		var b bytes.Buffer
		if encErr := wire.NewValueEncoder(&b).Encode(res); encErr != nil {
			err = fmt.Errorf("%w: the result of host function %q: %w", mlbridge.ErrSerialization, name, encErr)
		} else {
			// The node reads it, then deletes it. Under the function's ctx: once that
			// ended, the node has stopped waiting.
			data = b.Bytes()
			if store {
				data, ref, err = s.blobs.pack(ctx, h, data, fmt.Sprintf("the result of host function %q", name), mlbridge.ErrSerialization)
			}
		}
	}
	if err != nil {
		return &nats.Msg{Subject: reply, Header: nats.Header{hKind: {kindErr}}, Data: encodeError(err)}, ""
	}
	return &nats.Msg{Subject: reply, Header: h, Data: data}, ref
}

// send publishes an answer; a stored result it could not send is deleted, nobody will read it.
func (s *hostServer) send(msg *nats.Msg, ref, name string) {
	pubErr := s.nc.PublishMsg(msg)
	if pubErr != nil {
		s.blobs.dropLater(ref)
	}
	if errors.Is(pubErr, nats.ErrMaxPayload) {
		tooBig := fmt.Errorf("%w: %w: the result of host function %q (%d bytes) is over the NATS server's max payload (%d)",
			ErrPayloadTooLarge, mlbridge.ErrSerialization, name, len(msg.Data), s.nc.MaxPayload())
		pubErr = s.nc.PublishMsg(&nats.Msg{Subject: msg.Subject, Header: nats.Header{hKind: {kindErr}}, Data: encodeError(tooBig)})
	}
	if pubErr != nil {
		s.log.Warn("mlnats: a host function's answer was not sent", "fn", name, "err", pubErr)
	}
}
