package mlnats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/wire"
	"github.com/mlbridge/mlbridge/internal/worker"
)

// Forward is a host function for a node's pool that runs in the client that made the call:
// a Python handler's host.call(name, args) during a call that came over NATS goes to that
// client's Options.HostFuncs, under the call's remaining deadline, cancellation and trace.
// Register it in the node's Config.HostFuncs (or RegistryOptions.HostFuncs) so the workers
// know the function exists; opts (mlbridge.Describe, mlbridge.WithSchema) say what Python
// sees in host.functions(). docs/DISTRIBUTED.md, "Host functions".
//
// The call fails with ErrNotFound when the call did not come from a client that serves host
// functions (a local call, a client without Options.HostFuncs) or the client has none of
// that name; with ErrUnavailable when the client is gone or stops answering.
func Forward(name string, opts ...mlbridge.FuncOption) mlbridge.HostFunc {
	return mlbridge.Func(name, func(ctx context.Context, args msgpack.RawMessage) (any, error) {
		return forward(ctx, name, args)
	}, append([]mlbridge.FuncOption{mlbridge.WithSchema(map[string]any{"type": "object"})}, opts...)...)
}

// ForwardFunc is Forward with f's name, description and schema: one definition of a
// function, shared by the program that runs it (its client) and the nodes that forward it.
func ForwardFunc(f mlbridge.HostFunc) mlbridge.HostFunc {
	return Forward(f.Name(), mlbridge.Describe(f.Description()), mlbridge.WithSchema(f.Schema()))
}

// caller is the client a call came from, as its host functions' subject, and the node
// that took the call: put in the call's ctx, which the pool hands to host calls.
type caller struct {
	n       *Node
	subject string
}

type callerKey struct{}

// withCaller notes in ctx the client's host subject of a request, and its host-call depth.
func (n *Node) withCaller(ctx context.Context, h nats.Header) context.Context {
	if d, err := strconv.Atoi(h.Get(hDepth)); err == nil && d > 0 {
		ctx = worker.WithCallbackDepth(ctx, d) // the request came from a host function
	}
	if s := h.Get(hHost); s != "" {
		ctx = context.WithValue(ctx, callerKey{}, &caller{n: n, subject: s})
	}
	return ctx
}

// forward runs one host call in the calling client: a request to its subject, heartbeats
// while the function runs, then its result or error.
func forward(ctx context.Context, name string, args msgpack.RawMessage) (any, error) {
	c, _ := ctx.Value(callerKey{}).(*caller)
	if c == nil {
		return nil, fmt.Errorf("%w: host function %q is forwarded to the calling client, and this call came from none that serves host functions (mlnats.Options.HostFuncs)",
			mlbridge.ErrNotFound, name)
	}
	nc := c.n.nc
	hb := c.n.cfg.HostHeartbeat
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, fmt.Errorf("mlnats: host function %q: %w: %w", name, mlbridge.ErrUnavailable, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	h := nats.Header{hFn: {name}, hHB: {strconv.FormatInt(hb.Milliseconds(), 10)},
		hDepth: {strconv.Itoa(worker.CallbackDepth(ctx))}}
	if dl, ok := ctx.Deadline(); ok {
		h[hTimeout] = []string{formatMicros(time.Until(dl))}
	}
	inject(ctx, c.n.cfg.Propagator, h)
	if err := nc.PublishMsg(&nats.Msg{Subject: c.subject, Reply: inbox, Header: h, Data: args}); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			return nil, fmt.Errorf("mlnats: host function %q: %w: %w: %d bytes of arguments are over the NATS server's max payload (%d)",
				name, ErrPayloadTooLarge, mlbridge.ErrInvalidArgument, len(args), nc.MaxPayload())
		}
		return nil, fmt.Errorf("mlnats: host function %q: %w: %w", name, mlbridge.ErrUnavailable, err)
	}
	lostAfter := 4 * hb
	timer := time.NewTimer(lostAfter)
	defer timer.Stop()
	for {
		select {
		case m := <-ch:
			switch m.Header.Get(hKind) {
			case kindHB:
				timer.Reset(lostAfter)
			case kindRes:
				if len(m.Data) == 0 {
					return nil, nil
				}
				if err := wire.CheckValue(m.Data); err != nil {
					return nil, fmt.Errorf("mlnats: host function %q: the client's result: %w: %w", name, mlbridge.ErrProtocol, err)
				}
				return msgpack.RawMessage(m.Data), nil
			case kindErr:
				return nil, decodeError(m.Data)
			default:
				if m.Header.Get("Status") == "503" {
					return nil, fmt.Errorf("mlnats: host function %q: the calling client is gone (no responders on its subject): %w", name, mlbridge.ErrUnavailable)
				}
				return nil, fmt.Errorf("mlnats: host function %q: unexpected reply %q: %w", name, m.Header.Get(hKind), mlbridge.ErrProtocol)
			}
		case <-timer.C:
			cancelHostCall(nc, c.subject, inbox)
			return nil, fmt.Errorf("mlnats: host function %q: the calling client was silent for %v: %w", name, lostAfter, mlbridge.ErrUnavailable)
		case <-ctx.Done():
			cancelHostCall(nc, c.subject, inbox)
			return nil, ctxErr(fmt.Sprintf("host function %q", name), ctx.Err())
		}
	}
}

// cancelHostCall tells the client to cancel the function's ctx: the call it serves for reply.
func cancelHostCall(nc *nats.Conn, subject, reply string) {
	_ = nc.PublishMsg(&nats.Msg{Subject: subject, Header: nats.Header{hCtl: {ctlCancel}, hID: {reply}}})
}
