package mlnats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

const (
	defaultHeartbeat = 250 * time.Millisecond
	minHeartbeat     = 10 * time.Millisecond
	defaultWindow    = 64
)

// dispatch runs each request on its own goroutine: micro calls a handler from its
// subscription's one goroutine, and calls must run side by side.
func (b *nodeBridge) dispatch(ep string, r micro.Request) {
	if r.Reply() == "" {
		return // nobody to answer
	}
	b.n.inflight.Add(1)
	go func() {
		defer b.n.inflight.Add(-1)
		b.handle(ep, r)
	}()
}

func (b *nodeBridge) handle(ep string, r micro.Request) {
	h := nats.Header(r.Headers())
	id := r.Reply()
	ctx, cancel := context.WithCancel(b.n.withCaller(extract(context.Background(), b.n.cfg.Propagator, h), h, r.Reply()))
	defer cancel()
	if t, err := strconv.ParseInt(h.Get(hTimeout), 10, 64); err == nil {
		// Relative: the caller's clock and ours need not agree; the time in transit is lost.
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, time.Duration(t)*time.Microsecond)
		defer c2()
	}
	c := &nodeCall{cancel: cancel}
	if ep == endpointStream {
		c.credit = make(chan int, 16)
	}
	b.mu.Lock()
	b.calls[id] = c
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.calls, id)
		b.mu.Unlock()
	}()
	defer b.heartbeat(id, h, cancel)()

	op := h.Get(hOp)
	// Arguments in the Object Store are read under the call's deadline; the client deletes
	// them when the call is over (a retry on another node reads them again).
	body, _, err := b.n.blobs.unpack(ctx, &nats.Msg{Header: h, Data: r.Data()})
	if err != nil {
		b.reply(r, nil, fmt.Errorf("op %q: arguments: %w", op, err))
		return
	}
	var args any
	if len(body) > 0 {
		args = msgpack.RawMessage(body)
	}
	set := mlbridge.CallSettings{Idempotent: h.Get(hIdem) == "1"}
	if u := h.Get(hUses); u != "" {
		set.Uses = strings.Split(u, ",")
	}
	var res mlbridge.Result
	switch ep {
	case endpointCall:
		res, err = b.a.Call(ctx, op, args, set.CallOptions()...)
	case endpointSubmit:
		res, err = b.a.Submit(ctx, op, args, set.CallOptions()...).Wait(ctx)
	case endpointDefs:
		var raw []byte
		raw, err = b.defs(ctx, op, body)
		res = mlbridge.RawResult(raw)
	case endpointStream:
		b.stream(ctx, c, r, op, args, set, h)
		return
	}
	var raw []byte
	if err == nil {
		raw, err = res.RawErr() // a shared-memory array that cannot be inlined fails the call, not a nil reply
	}
	b.reply(r, raw, err)
}

// heartbeat tells the client, while the call runs, that this node is alive and which it is
// (so cancels come here directly), and cancels the call if the client is gone (probeCaller).
// Fast calls end before the first beat.
func (b *nodeBridge) heartbeat(reply string, h nats.Header, cancel context.CancelFunc) (stop func()) {
	w := newCallerWatch(b.n, reply, heartbeatEvery(h.Get(hHB)), clientPatience(h.Get(hLost)), cancel)
	stopBeat := beat(b.n.nc, reply, h.Get(hHB), func() nats.Header {
		return nats.Header{hKind: {kindHB}, hNode: {b.n.cfg.ID}}
	}, w.beat)
	return func() {
		stopBeat()
		w.stop()
	}
}

func (b *nodeBridge) reply(r micro.Request, raw []byte, err error) {
	// Published directly, not with r.Respond/r.Error: micro reads those requests' state when
	// the handler returns, and ours returned long before (the call runs on its own
	// goroutine). The micro error headers are set all the same, for micro-aware clients.
	m := &nats.Msg{Subject: r.Reply(), Data: raw, Header: nats.Header{hKind: {kindRes}}}
	var ref string
	if err == nil {
		// Not under the call's ctx: the result is done, and its deadline may be near. The
		// client deletes it once read; if it is gone, the bucket's TTL does.
		m.Data, ref, err = b.n.blobs.pack(context.Background(), m.Header, raw, "a result", mlbridge.ErrSerialization)
	}
	if err != nil {
		m.Data = encodeError(err)
		m.Header = nats.Header{hKind: {kindErr}, micro.ErrorHeader: {describe(err)}, micro.ErrorCodeHeader: {errorCode(err)}}
	}
	err = b.n.nc.PublishMsg(m)
	if err != nil {
		b.n.blobs.dropLater(ref) // nobody will read it
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		// Silence would cost the client LostAfter and an ErrNodeLost; say what happened.
		tooBig := fmt.Errorf("%w: a result of %d bytes is over the NATS server's max payload (%d)",
			mlbridge.ErrSerialization, len(raw), b.n.nc.MaxPayload())
		_ = b.n.nc.PublishMsg(&nats.Msg{Subject: r.Reply(), Data: encodeError(tooBig), Header: nats.Header{hKind: {kindErr}}})
	}
}

// stream sends the chunks of a generator op as the client's credit allows: at most the
// window in flight, so a slow consumer's chunks wait here, not in NATS or the client. (The
// pool queues them up to its MaxStreamBuffer meanwhile; it does not slow the generator.)
func (b *nodeBridge) stream(ctx context.Context, c *nodeCall, r micro.Request, op string, args any, set mlbridge.CallSettings, h nats.Header) {
	credit := defaultWindow
	if w, err := strconv.Atoi(h.Get(hWindow)); err == nil && w > 0 {
		credit = w
	}
	hdr := nats.Header{hKind: {kindChunk}, hNode: {b.n.cfg.ID}}
	for res, err := range b.a.Stream(ctx, op, args, set.CallOptions()...) {
		if err != nil {
			b.reply(r, nil, err)
			return
		}
		for credit == 0 {
			select {
			case n := <-c.credit:
				credit += n
			case <-ctx.Done(): // the consumer cancelled, or is gone (callerWatch)
				b.reply(r, nil, ctxErr("stream waiting for the consumer", ctx.Err()))
				return
			}
		}
		credit--
		m := &nats.Msg{Subject: r.Reply(), Header: hdr, Data: res.Raw()}
		ref := ""
		if len(m.Data) > b.n.blobs.threshold() {
			m.Header = nats.Header{hKind: {kindChunk}, hNode: {b.n.cfg.ID}}
			// Not cut short by the consumer's cancel: a finished chunk is sent, and the client
			// deletes what it will not read; one cut short mid-put could be left behind.
			if m.Data, ref, err = b.n.blobs.pack(context.WithoutCancel(ctx), m.Header, res.Raw(), "a chunk", mlbridge.ErrSerialization); err != nil {
				b.reply(r, nil, err)
				return
			}
		}
		if err := b.n.nc.PublishMsg(m); err != nil {
			b.n.blobs.dropLater(ref) // nobody will read it
			if errors.Is(err, nats.ErrMaxPayload) {
				b.reply(r, nil, fmt.Errorf("%w: a chunk of %d bytes is over the NATS server's max payload (%d)",
					mlbridge.ErrSerialization, len(res.Raw()), b.n.nc.MaxPayload()))
			}
			return // otherwise our connection is gone; the client notices the silence
		}
	}
	_ = b.n.nc.PublishMsg(&nats.Msg{Subject: r.Reply(), Header: nats.Header{hKind: {kindEnd}, hNode: {b.n.cfg.ID}}})
}

// defsReq is the body of a request to the definitions endpoint.
type defsReq struct {
	ID       string            `msgpack:"id,omitempty"`
	Kind     string            `msgpack:"kind,omitempty"`
	Def      *store.Definition `msgpack:"def,omitempty"`
	IfAbsent bool              `msgpack:"if_absent,omitempty"` // Definition does not carry it
	Inputs   map[string]any    `msgpack:"inputs,omitempty"`

	IfVersion uint64 `msgpack:"if_version,omitempty"` // Definition does not carry it either
}

// defs runs a definitions action (and info, health, execute, describe) on the adapter.
func (b *nodeBridge) defs(ctx context.Context, action string, body []byte) ([]byte, error) {
	var q defsReq
	if len(body) > 0 {
		if err := msgpack.Unmarshal(body, &q); err != nil {
			return nil, errors.Join(mlbridge.ErrProtocol, err)
		}
	}
	switch action {
	case "info":
		return msgpack.Marshal(b.a.Info())
	case "health":
		return nil, b.a.Health(ctx)
	case "stats":
		return msgpack.Marshal(b.a.Stats())
	case "create":
		if q.Def == nil {
			return nil, mlbridge.ErrInvalidArgument
		}
		d := *q.Def
		d.IfAbsent, d.IfVersion = q.IfAbsent, q.IfVersion
		d, err := b.a.Create(ctx, d)
		if err != nil {
			return nil, err
		}
		return msgpack.Marshal(d)
	case "get":
		d, err := b.a.Get(ctx, q.ID)
		if err != nil {
			return nil, err
		}
		return msgpack.Marshal(d)
	case "list":
		ds, err := b.a.List(ctx, q.Kind)
		if err != nil {
			return nil, err
		}
		return msgpack.Marshal(ds)
	case "delete":
		return nil, b.a.Delete(ctx, q.ID)
	case "describe":
		m, err := b.a.Describe(ctx, q.ID)
		if err != nil {
			return nil, err
		}
		return msgpack.Marshal(m)
	case "execute":
		res, err := b.a.Execute(ctx, q.ID, q.Inputs)
		if err != nil {
			return nil, err
		}
		return res.RawErr()
	}
	return nil, errors.Join(mlbridge.ErrInvalidArgument, errors.New("mlnats: unknown definitions action "+strconv.Quote(action)))
}

// errorCode is the micro error code of err (HTTP-like, for `nats micro stats` readers).
func errorCode(err error) string {
	switch {
	case errors.Is(err, mlbridge.ErrInvalidArgument), errors.Is(err, mlbridge.ErrUnknownOp):
		return "400"
	case errors.Is(err, mlbridge.ErrNotFound):
		return "404"
	case errors.Is(err, mlbridge.ErrOverloaded), errors.Is(err, mlbridge.ErrRateLimit):
		return "429"
	case errors.Is(err, mlbridge.ErrTimeout):
		return "504"
	case errors.Is(err, mlbridge.ErrClosed), errors.Is(err, mlbridge.ErrUnavailable), errors.Is(err, mlbridge.ErrWorkerExited):
		return "503"
	}
	return "500"
}

// describe is err's first line, short: a header value cannot hold a traceback.
func describe(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	s = strings.ReplaceAll(s, "\r", " ")
	if len(s) > 200 {
		s = s[:200]
	}
	if s == "" {
		s = "error"
	}
	return s
}

// ctxErr is the error of a call whose ctx ended, as a local call reports it.
func ctxErr(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", what, mlbridge.ErrTimeout, err)
	}
	return fmt.Errorf("%s: %w: %w", what, mlbridge.ErrCancelled, err)
}
