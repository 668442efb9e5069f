package mlnats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/propagation"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/wire"
	"github.com/mlbridge/mlbridge/internal/worker"
)

// Options tune a Remote. The zero value is ready to use.
type Options struct {
	// Prefix is the first token of every subject (default DefaultPrefix).
	Prefix string
	// Heartbeat is how often the node running a call says it is alive (default 250ms);
	// LostAfter the silence after which the call's node counts as lost (default 4
	// heartbeats). A lost node costs a call about LostAfter.
	Heartbeat time.Duration
	LostAfter time.Duration
	// Retries bounds how many more nodes an Idempotent call is tried on when its node is
	// lost (default 2).
	Retries int
	// Window is a stream's credit: chunks a node may send ahead of the consumer (default 64).
	Window int
	// Logger receives retries (default slog.Default()).
	Logger *slog.Logger
	// Propagator writes the trace context into requests (default: otel's global propagator,
	// or W3C TraceContext while none is set).
	Propagator propagation.TextMapPropagator
	// Blobs says where arguments (and host functions' results) over the server's max payload
	// go (a JetStream Object Store).
	Blobs BlobConfig
	// HostFuncs are Go functions the Python handlers of this Remote's calls may call, on
	// whichever node runs them: the node's pool registers them with Forward. They run here,
	// with the call's remaining deadline, its cancellation and its trace (docs/DISTRIBUTED.md,
	// "Host functions"). Two of one name are ErrInvalidConfiguration at Dial.
	HostFuncs []mlbridge.HostFunc
}

// Remote is a bridge served by NATS nodes, as an mlbridge.Adapter.
type Remote struct {
	nc     *nats.Conn
	bridge string
	subj   subjects
	opt    Options
	log    *slog.Logger
	info   mlbridge.Info
	blobs  *blobs
	host   *hostServer // nil without Options.HostFuncs
	// hbMillis is Options.Heartbeat as its header value, formatted once.
	hbMillis string
	// lostMillis is Options.LostAfter as its header value (hLost), formatted once.
	lostMillis string

	inbox string // prefix of every reply subject; one wildcard subscription routes them
	sub   *nats.Subscription
	done  chan struct{}
	once  sync.Once

	mu      sync.Mutex
	pending map[string]chan *nats.Msg
	origins map[string]context.Context // calls' ctx by token, with host functions only
}

var _ mlbridge.Adapter = (*Remote)(nil)

// Dial returns an Adapter for bridge as served by the nodes reachable on nc. It asks one
// node for the bridge's Info, so it fails (mlbridge.ErrUnavailable) when none serves it.
// Closing the Remote leaves nc open.
func Dial(ctx context.Context, nc *nats.Conn, bridge string, opt Options) (*Remote, error) {
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	if err := checkName("bridge name", bridge); err != nil {
		return nil, err
	}
	if opt.Heartbeat <= 0 {
		opt.Heartbeat = defaultHeartbeat
	}
	if opt.LostAfter <= 0 {
		opt.LostAfter = 4 * opt.Heartbeat
	}
	if opt.Retries <= 0 {
		opt.Retries = 2
	}
	if opt.Window <= 0 {
		opt.Window = defaultWindow
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Propagator == nil {
		opt.Propagator = globalOrW3C{}
	}
	r := &Remote{
		nc: nc, bridge: bridge, subj: newSubjects(opt.Prefix, bridge), opt: opt,
		log: opt.Logger.With("bridge", bridge), inbox: nc.NewInbox() + ".",
		done: make(chan struct{}), pending: map[string]chan *nats.Msg{},
		blobs: newBlobs(nc, opt.Blobs), hbMillis: strconv.FormatInt(opt.Heartbeat.Milliseconds(), 10),
		lostMillis: strconv.FormatInt(opt.LostAfter.Milliseconds(), 10),
	}
	if len(opt.HostFuncs) > 0 {
		r.origins = map[string]context.Context{}
		host, err := newHostServer(nc, r.blobs, opt.HostFuncs, r.origin, opt.Propagator, r.log)
		if err != nil {
			return nil, err
		}
		r.host = host
	}
	sub, err := nc.Subscribe(r.inbox+"*", r.route)
	if err != nil {
		if r.host != nil {
			_ = r.host.close()
		}
		return nil, fmt.Errorf("mlnats: %w", err)
	}
	// Replies are dropped, never queued without bound, only by our own route; NATS must
	// not drop them as a slow consumer.
	_ = sub.SetPendingLimits(-1, -1)
	r.sub = sub
	raw, err := r.defs(ctx, "info", nil, true)
	if err == nil {
		err = mlbridge.RawResult(raw).Decode(&r.info)
	}
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}

// route hands a reply to the call waiting for it. It never blocks: a call's channel has room
// for what its node may send (one reply; a stream's window), and only heartbeats are dropped.
// The send is under the lock so that exchange.close, which drains the channel under it,
// misses nothing.
func (r *Remote) route(m *nats.Msg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := r.pending[m.Subject[len(r.inbox):]]
	if ch == nil {
		// A call that ended: a late heartbeat, chunk or result. A value stored for it
		// would wait for the bucket's TTL; nobody else will read it.
		r.dropStored(m)
		r.cancelAbandoned(m)
		return
	}
	if m.Header.Get(hKind) == kindHB && len(ch) > cap(ch)/2 {
		return // the caller has other messages to read, which prove the node alive too
	}
	select {
	case ch <- m:
	default:
		r.log.Warn("mlnats: reply dropped, the call's buffer is full", "subject", m.Subject)
		r.dropStored(m)
	}
}

// cancelAbandoned tells a node that still runs a call this Remote gave up on to cancel
// it. A call given up as ErrNodeLost (no heartbeat for LostAfter: a server restart, a
// partition) sends no cancel, the node being taken for dead; if it was not, it runs the
// call on once it reconnects (a stream waits for credit forever), and its probes find
// this Remote still listening on the call's reply subject. Its heartbeats and chunks for
// the call say it still runs it: each is answered with a cancel. (A heartbeat can also
// follow a call's answer by a hair; the node ignores a cancel for a call it has done.)
func (r *Remote) cancelAbandoned(m *nats.Msg) {
	node := m.Header.Get(hNode)
	if node == "" {
		return
	}
	switch m.Header.Get(hKind) {
	case kindHB, kindChunk:
		_ = r.nc.PublishMsg(&nats.Msg{Subject: r.subj.ctlPrefix + node, Header: nats.Header{hID: {m.Subject}, hCtl: {ctlCancel}}})
	}
}

// dropStored deletes the stored value m names, if any, off the caller's path.
func (r *Remote) dropStored(m *nats.Msg) {
	if ref := m.Header.Get(hBlob); ref != "" {
		r.blobs.dropLater(ref)
	}
}

// origin is the ctx of the call in flight whose reply subject is reply (host calls made for
// it derive from it), or nil.
func (r *Remote) origin(reply string) context.Context {
	token, ok := strings.CutPrefix(reply, r.inbox)
	if !ok {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.origins[token]
}

// Info implements mlbridge.Adapter: the Info a node reported when Dial asked.
func (r *Remote) Info() mlbridge.Info { return r.info }

// Close stops the Remote: calls still waiting fail with mlbridge.ErrClosed.
func (r *Remote) Close() error {
	var err error
	r.once.Do(func() {
		close(r.done)
		err = r.sub.Unsubscribe()
		if r.host != nil {
			err = errors.Join(err, r.host.close())
		}
		r.blobs.close()
	})
	return err
}

// exchange is one call's conversation with a node.
type exchange struct {
	r     *Remote
	token string
	ch    chan *nats.Msg
	node  string // once a node spoke
	timer *time.Timer
	// endOrigin cancels the ctx host functions of this call run under (Options.HostFuncs):
	// they end with the call, whatever ends it, as they do locally — a killed node never
	// sends its cancel. callCtx is the caller's ctx, that ctx's parent.
	endOrigin context.CancelFunc
	callCtx   context.Context
}

// open registers a reply subject and sends the request.
func (r *Remote) open(ctx context.Context, subject, op string, p packed, set mlbridge.CallSettings, buf int) (*exchange, error) {
	select {
	case <-r.done:
		return nil, fmt.Errorf("mlnats: bridge %s: %w", r.bridge, mlbridge.ErrClosed)
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(fmt.Sprintf("op %q", op), err)
	}
	x := &exchange{r: r, token: nuid.Next(), ch: make(chan *nats.Msg, buf)}
	h := nats.Header{hOp: {op}, hHB: {r.hbMillis}, hLost: {r.lostMillis}}
	if p.ref != "" {
		h[hBlob] = []string{p.ref}
	}
	if dl, ok := ctx.Deadline(); ok {
		h[hTimeout] = []string{formatMicros(time.Until(dl))}
	}
	if set.Idempotent {
		h[hIdem] = []string{"1"}
	}
	if r.host != nil {
		h[hHost] = []string{r.host.subject}
		h[hHostBlobs] = []string{"1"}
	}
	if d := worker.CallbackDepth(ctx); d > 0 {
		h[hDepth] = []string{strconv.Itoa(d)} // made from a host function: the node counts on from here
	}
	if len(set.Uses) > 0 {
		h[hUses] = []string{strings.Join(set.Uses, ",")}
	}
	if subject == r.subj.stream {
		h[hWindow] = []string{strconv.Itoa(r.opt.Window)}
	}
	inject(ctx, r.opt.Propagator, h)
	r.mu.Lock()
	r.pending[x.token] = x.ch
	if r.origins != nil {
		x.callCtx = ctx
		var origin context.Context
		origin, x.endOrigin = context.WithCancel(ctx)
		r.origins[x.token] = origin
	}
	r.mu.Unlock()
	if err := r.nc.PublishMsg(&nats.Msg{Subject: subject, Reply: r.inbox + x.token, Header: h, Data: p.data}); err != nil {
		x.close()
		if errors.Is(err, nats.ErrMaxPayload) { // under the threshold, but not with the headers
			return nil, fmt.Errorf("mlnats: op %q: %w: %w: %d bytes of arguments and headers are over the NATS server's max payload (%d)",
				op, ErrPayloadTooLarge, mlbridge.ErrInvalidArgument, len(p.data), r.nc.MaxPayload())
		}
		return nil, fmt.Errorf("mlnats: sending %q: %w: %w", op, mlbridge.ErrUnavailable, err)
	}
	return x, nil
}

func (x *exchange) close() {
	x.r.mu.Lock()
	delete(x.r.pending, x.token)
	delete(x.r.origins, x.token)
	// Replies the caller will not read (a stream it stopped): their stored values go now.
	for len(x.ch) > 0 {
		x.r.dropStored(<-x.ch)
	}
	x.r.mu.Unlock()
	if x.timer != nil {
		x.timer.Stop()
	}
	if x.endOrigin != nil {
		x.endOriginNow()
	}
}

// endOriginNow ends the host functions' ctx as the call ends — except around the call's
// deadline, which ends it itself, as DeadlineExceeded: a host function must not see Canceled
// for a deadline. Near it, the answer (the node's timeout: Python's deadline is in whole ms)
// can come before the deadline's own timer has run, even once the deadline has passed
// (deadlineGrace, as for a node's cancel). Left to the deadline, the ctx is released by it.
func (x *exchange) endOriginNow() {
	if dl, ok := x.callCtx.Deadline(); ok && time.Until(dl) < deadlineGrace {
		return
	}
	x.endOrigin()
}

// next returns the node's next message that is not a heartbeat. It fails with
// ErrUnavailable when no node serves the bridge, ErrNodeLost when the node went silent for
// LostAfter, and the ctx's error (after telling the node to cancel) when ctx ends.
func (x *exchange) next(ctx context.Context, op string) (*nats.Msg, error) {
	if x.timer == nil {
		x.timer = time.NewTimer(x.r.opt.LostAfter)
	} else {
		x.timer.Reset(x.r.opt.LostAfter)
	}
	for {
		select {
		case m := <-x.ch:
			kind := m.Header.Get(hKind)
			if kind == "" && len(m.Data) == 0 && m.Header.Get("Status") == "503" {
				return nil, fmt.Errorf("mlnats: op %q: no node serves bridge %s: %w", op, x.r.bridge, mlbridge.ErrUnavailable)
			}
			if n := m.Header.Get(hNode); n != "" {
				x.node = n
			}
			if kind == kindHB {
				x.timer.Reset(x.r.opt.LostAfter)
				continue
			}
			return m, nil
		case <-x.timer.C:
			node := x.node
			if node == "" {
				node = "(unknown)"
			}
			return nil, fmt.Errorf("mlnats: op %q on bridge %s: node %s silent for %v: %w (%w)",
				op, x.r.bridge, node, x.r.opt.LostAfter, ErrNodeLost, mlbridge.ErrUnavailable)
		case <-ctx.Done():
			x.control(ctlCancel, "")
			return nil, ctxErr(fmt.Sprintf("op %q", op), ctx.Err())
		case <-x.r.done:
			x.control(ctlCancel, "")
			return nil, fmt.Errorf("mlnats: op %q: %w", op, mlbridge.ErrClosed)
		}
	}
}

// control sends a cancel or a credit to the node running the call (to every node of the
// bridge while the client does not know which one it is).
func (x *exchange) control(what, credit string) {
	subject := x.r.subj.ctlAll
	if x.node != "" {
		subject = x.r.subj.ctlPrefix + x.node
	}
	h := nats.Header{hID: {x.r.inbox + x.token}, hCtl: {what}}
	if credit != "" {
		h[hCredit] = []string{credit}
	}
	_ = x.r.nc.PublishMsg(&nats.Msg{Subject: subject, Header: h})
}

// packed is a request's body: the arguments, or the reference to their stored copy.
type packed struct {
	data []byte
	ref  string
}

// pack stores arguments over the max payload; the caller drops p.ref when the call is over.
func (r *Remote) pack(ctx context.Context, op string, data []byte) (packed, error) {
	if len(data) <= r.blobs.threshold() {
		return packed{data: data}, nil
	}
	h := nats.Header{}
	body, ref, err := r.blobs.pack(ctx, h, data, fmt.Sprintf("arguments of %q", op), mlbridge.ErrInvalidArgument)
	return packed{data: body, ref: ref}, err
}

// result reads a final reply (from the Object Store when it is stored there; then deleted).
func (r *Remote) result(ctx context.Context, m *nats.Msg) ([]byte, error) {
	switch m.Header.Get(hKind) {
	case kindRes:
		data, ref, err := r.blobs.unpack(ctx, m)
		r.blobs.dropLater(ref)
		return data, err
	case kindErr:
		return nil, decodeError(m.Data)
	}
	return nil, fmt.Errorf("mlnats: unexpected reply %q: %w", m.Header.Get(hKind), mlbridge.ErrProtocol)
}

// roundTrip runs one request to completion, on another node when its node is lost and the
// call is idempotent.
func (r *Remote) roundTrip(ctx context.Context, subject, op string, data []byte, set mlbridge.CallSettings) ([]byte, error) {
	p, err := r.pack(ctx, op, data)
	if err != nil {
		return nil, err
	}
	defer r.blobs.dropLater(p.ref) // the arguments are ours: gone once the call is, after any retry
	for attempt := 0; ; attempt++ {
		raw, err := r.attempt(ctx, subject, op, p, set)
		if err != nil && set.Idempotent && attempt < r.opt.Retries && ctx.Err() == nil && isLost(err) {
			r.log.InfoContext(ctx, "mlnats: node lost during an idempotent call; retrying on another", "op", op, "attempt", attempt+1)
			continue
		}
		return raw, err
	}
}

func (r *Remote) attempt(ctx context.Context, subject, op string, p packed, set mlbridge.CallSettings) ([]byte, error) {
	x, err := r.open(ctx, subject, op, p, set, 4)
	if err != nil {
		return nil, err
	}
	defer x.close()
	m, err := x.next(ctx, op)
	if err != nil {
		return nil, err
	}
	return r.result(ctx, m)
}

func isLost(err error) bool { return errors.Is(err, ErrNodeLost) }

// encodeArgs encodes a call's arguments as the pool would (compact ints, json tags).
func encodeArgs(args any) ([]byte, error) {
	if args == nil {
		return nil, nil
	}
	var b bytes.Buffer
	if err := wire.NewValueEncoder(&b).Encode(args); err != nil {
		return nil, fmt.Errorf("mlnats: encoding arguments: %w: %w", mlbridge.ErrSerialization, err)
	}
	return b.Bytes(), nil
}
