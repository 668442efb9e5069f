package mlnats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
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
	call    string // the call's reply subject: the client derives the function's ctx from that call's
	blobs   bool   // the client reads host-call arguments stored in the Object Store (hHostBlobs)
}

type callerKey struct{}

// withCaller notes in ctx the client's host subject of a request (whose reply subject is
// call), and its host-call depth.
func (n *Node) withCaller(ctx context.Context, h nats.Header, call string) context.Context {
	if d, err := strconv.Atoi(h.Get(hDepth)); err == nil && d > 0 {
		ctx = worker.WithCallbackDepth(ctx, d) // the request came from a host function
	}
	if s := h.Get(hHost); s != "" {
		ctx = context.WithValue(ctx, callerKey{}, &caller{n: n, subject: s, call: call, blobs: h.Get(hHostBlobs) == "1"})
	}
	return ctx
}

// forward runs one host call in the calling client: a request to its subject, heartbeats
// while the function runs, then its result or error. No deadline travels: the client runs
// the function under the ctx of its own call (hID), whose deadline this call's derives from.
func forward(ctx context.Context, name string, args msgpack.RawMessage) (any, error) {
	c, _ := ctx.Value(callerKey{}).(*caller)
	if c == nil {
		return nil, fmt.Errorf("%w: host function %q is forwarded to the calling client, and this call came from none that serves host functions (mlnats.Options.HostFuncs)",
			mlbridge.ErrNotFound, name)
	}
	nc, b := c.n.nc, c.n.blobs
	hb := c.n.cfg.HostHeartbeat
	inbox, ch, done, err := c.n.hostReplies.open(nc, b)
	if err != nil {
		return nil, fmt.Errorf("mlnats: host function %q: %w: %w", name, mlbridge.ErrUnavailable, err)
	}
	defer done()
	h := nats.Header{hFn: {name}, hID: {c.call}, hHB: {strconv.FormatInt(hb.Milliseconds(), 10)},
		hDepth: {strconv.Itoa(worker.CallbackDepth(ctx))}, hHostBlobs: {"1"}}
	inject(ctx, c.n.cfg.Propagator, h)
	// Arguments over the max payload go through the Object Store, as a call's do (blobs.go),
	// when the client reads them there; to an older client they go inline (too big: the
	// typed error below).
	body, ref := []byte(args), ""
	if c.blobs {
		var err error
		if body, ref, err = b.pack(ctx, h, args, fmt.Sprintf("arguments of host function %q", name), mlbridge.ErrInvalidArgument); err != nil {
			return nil, fmt.Errorf("mlnats: host function %q: %w", name, err)
		}
	}
	// They are the node's, as a call's arguments are its client's: deleted once the host
	// call is over, whatever its outcome (the client may still be reading them until then).
	defer b.dropLater(ref)
	if err := nc.PublishMsg(&nats.Msg{Subject: c.subject, Reply: inbox, Header: h, Data: body}); err != nil {
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
				data, ref, err := b.unpack(ctx, m)
				b.dropLater(ref) // the reader deletes a stored result once read
				if err != nil {
					return nil, fmt.Errorf("mlnats: host function %q: the client's result: %w", name, hostBlobErr(err))
				}
				if len(data) == 0 {
					return nil, nil
				}
				if err := wire.CheckValue(data); err != nil {
					return nil, fmt.Errorf("mlnats: host function %q: the client's result: %w: %w", name, mlbridge.ErrProtocol, err)
				}
				return msgpack.RawMessage(data), nil
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

// hostBlobErr is err, when it is a stored value gone missing (ErrBlobLost), also as
// mlbridge.ErrUnavailable: the category Python's host.call raises for it (ErrBlobLost is
// none of the protocol's categories, and would reach Python as "internal").
func hostBlobErr(err error) error {
	if errors.Is(err, ErrBlobLost) && !errors.Is(err, mlbridge.ErrUnavailable) {
		return fmt.Errorf("%w: %w", mlbridge.ErrUnavailable, err)
	}
	return err
}

// cancelHostCall tells the client to cancel the function's ctx: the call it serves for reply.
func cancelHostCall(nc *nats.Conn, subject, reply string) {
	_ = nc.PublishMsg(&nats.Msg{Subject: subject, Header: nats.Header{hCtl: {ctlCancel}, hID: {reply}}})
}

// hostReplies routes the answers to a node's forwarded host calls: one wildcard subscription
// for all of them, opened at the first call (a subscription per call would cost a SUB and an
// UNSUB each).
type hostReplies struct {
	once   sync.Once
	err    error
	prefix string
	sub    *nats.Subscription
	// blobs deletes the stored results that no call will read (blobs.go).
	blobs *blobs

	mu      sync.Mutex
	pending map[string]chan *nats.Msg
	closed  bool
}

// open registers one call: its reply subject and the channel its answers arrive on; done
// forgets it. b is the node's values' store, for stored results nobody reads.
func (h *hostReplies) open(nc *nats.Conn, b *blobs) (subject string, ch chan *nats.Msg, done func(), err error) {
	h.once.Do(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.blobs = b
		if h.closed { // the node left before its first host call
			h.err = fmt.Errorf("%w: the node is shut down", mlbridge.ErrClosed)
			return
		}
		h.prefix = nc.NewInbox() + "."
		h.pending = map[string]chan *nats.Msg{}
		h.sub, h.err = nc.Subscribe(h.prefix+"*", h.route)
		if h.err == nil {
			_ = h.sub.SetPendingLimits(-1, -1) // route never blocks; see it
		}
	})
	if h.err != nil {
		return "", nil, nil, h.err
	}
	token := nuid.Next()
	ch = make(chan *nats.Msg, 16)
	h.mu.Lock()
	if h.closed { // shut down since the first host call: no subscription answers any more
		h.mu.Unlock()
		return "", nil, nil, fmt.Errorf("%w: the node is shut down", mlbridge.ErrClosed)
	}
	h.pending[token] = ch
	h.mu.Unlock()
	return h.prefix + token, ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.pending, token)
		// A result that came after the call stopped waiting (its ctx ended, the client
		// seemed silent): a value stored for it would wait for the bucket's TTL.
		for {
			select {
			case m := <-ch:
				h.dropStored(m)
			default:
				return
			}
		}
	}, nil
}

// route hands an answer to its call without blocking: a call waits for one answer and
// heartbeats, which may be dropped when its buffer is full (the answer proves it alive).
// The send is under the lock so that done, which drains the channel under it, misses
// nothing.
func (h *hostReplies) route(m *nats.Msg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := h.pending[m.Subject[len(h.prefix):]]
	if ch == nil {
		h.dropStored(m) // a call that ended
		return
	}
	if m.Header.Get(hKind) == kindHB && len(ch) > cap(ch)/2 {
		return // the call has messages to read, which prove the client alive too
	}
	select {
	case ch <- m:
	default:
		h.dropStored(m)
	}
}

// dropStored deletes the stored value m names, if any, off the caller's path.
func (h *hostReplies) dropStored(m *nats.Msg) {
	if ref := m.Header.Get(hBlob); ref != "" && h.blobs != nil {
		h.blobs.dropLater(ref)
	}
}

func (h *hostReplies) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	if h.sub != nil {
		_ = h.sub.Unsubscribe()
	}
}
