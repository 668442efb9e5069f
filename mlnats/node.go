package mlnats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/propagation"

	"github.com/mlbridge/mlbridge"
)

// NodeConfig describes a node: the adapters it serves and how.
type NodeConfig struct {
	// Adapters are the bridges to serve, by name (each name one subject token). Registry
	// adds a Registry's.
	Adapters map[string]mlbridge.Adapter
	// Prefix is the first token of every subject (default DefaultPrefix). Nodes and clients
	// of one deployment must agree on it.
	Prefix string
	// ID names the node in its services and control subject (default: a random NUID).
	ID string
	// Metadata is added to every service's metadata (a region, a host name).
	Metadata map[string]string
	// Logger receives the node's events (default slog.Default()).
	Logger *slog.Logger
	// Propagator reads the trace context of requests (default: otel's global propagator, or
	// W3C TraceContext while none is set).
	Propagator propagation.TextMapPropagator
	// Blobs says where results, stream chunks and host calls' arguments over the server's
	// max payload go (a JetStream Object Store).
	Blobs BlobConfig
	// Definitions, when the node's pools keep their definitions in this KV store (shared
	// by the deployment's nodes), is watched: every change made through another node or
	// client reaches this node's running workers (see Refresher).
	Definitions *KVStore
	// HostHeartbeat is how often a client running a forwarded host function (Forward) is
	// asked to say it is alive (default 250ms); after 4 silent intervals the host call
	// fails with ErrUnavailable.
	HostHeartbeat time.Duration
}

// A Refresher brings its running workers up to date with a definition that changed in a
// shared store: *mlbridge.Pool is one. A node served adapters that are Refreshers when
// NodeConfig.Definitions is set.
type Refresher interface {
	Refresh(ctx context.Context, id string) error
}

// Registry adds every bridge of r to the config's adapters, starting each one (a Registry
// starts bridges on first use; a node serves them from the start).
func (c *NodeConfig) Registry(ctx context.Context, r *mlbridge.Registry) error {
	if c.Adapters == nil {
		c.Adapters = map[string]mlbridge.Adapter{}
	}
	for _, name := range r.Names() {
		a, err := r.Adapter(ctx, name)
		if err != nil {
			return fmt.Errorf("mlnats: starting bridge %q: %w", name, err)
		}
		c.Adapters[name] = a
	}
	return nil
}

// Node serves adapters over NATS. Close or Shutdown it; its connection stays the caller's.
type Node struct {
	nc      *nats.Conn
	cfg     NodeConfig
	log     *slog.Logger
	bridges []*nodeBridge
	blobs   *blobs

	inflight atomic.Int64
	stopping atomic.Bool

	hostReplies hostReplies // answers to forwarded host calls (host.go)

	stopWatch context.CancelFunc // nil without NodeConfig.Definitions
	watching  sync.WaitGroup
}

// nodeBridge is one adapter served: its micro service, control subscriptions, and the calls
// in flight (by reply subject, for cancels and credits).
type nodeBridge struct {
	n    *Node
	name string
	a    mlbridge.Adapter
	subj subjects
	svc  micro.Service
	ctl  []*nats.Subscription

	mu    sync.Mutex
	calls map[string]*nodeCall
}

type nodeCall struct {
	cancel context.CancelFunc
	credit chan int // streams only
}

// NewNode registers one micro service per adapter on nc and starts serving.
func NewNode(nc *nats.Conn, cfg NodeConfig) (*Node, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.ID == "" {
		cfg.ID = nuid.Next()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Propagator == nil {
		cfg.Propagator = globalOrW3C{}
	}
	if cfg.HostHeartbeat <= 0 {
		cfg.HostHeartbeat = defaultHeartbeat
	}
	cfg.HostHeartbeat = max(cfg.HostHeartbeat, minHeartbeat)
	if err := checkName("prefix", cfg.Prefix); err != nil {
		return nil, err
	}
	if err := checkName("node id", cfg.ID); err != nil {
		return nil, err
	}
	if len(cfg.Adapters) == 0 {
		return nil, errors.New("mlnats: a node needs at least one adapter")
	}
	n := &Node{nc: nc, cfg: cfg, log: cfg.Logger.With("node", cfg.ID), blobs: newBlobs(nc, cfg.Blobs)}
	for _, name := range slices.Sorted(maps.Keys(cfg.Adapters)) {
		if err := n.serve(name, cfg.Adapters[name]); err != nil {
			_ = n.stopServices()
			n.unsubscribe()
			return nil, err
		}
	}
	// Once the server has our subscriptions, requests can reach us: a client told "the node
	// is up" must not get no-responders.
	if err := nc.Flush(); err != nil {
		_ = n.stopServices()
		n.unsubscribe()
		return nil, fmt.Errorf("mlnats: %w", err)
	}
	if cfg.Definitions != nil {
		if err := n.watch(cfg.Definitions); err != nil {
			_ = n.stopServices()
			n.unsubscribe()
			return nil, err
		}
	}
	n.log.Info("mlnats: node serving", "bridges", len(n.bridges), "prefix", cfg.Prefix)
	return n, nil
}

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.ID }

func (n *Node) serve(name string, a mlbridge.Adapter) error {
	if err := checkName("bridge name", name); err != nil {
		return err
	}
	b := &nodeBridge{n: n, name: name, a: a, subj: newSubjects(n.cfg.Prefix, name), calls: map[string]*nodeCall{}}
	svc, err := micro.AddService(n.nc, micro.Config{
		Name: serviceName(name), Version: ServiceVersion,
		Description: "mlbridge bridge " + name,
		Metadata:    b.metadata(),
	})
	if err != nil {
		return fmt.Errorf("mlnats: service for %q: %w", name, err)
	}
	b.svc = svc
	n.bridges = append(n.bridges, b)
	g := svc.AddGroup(n.cfg.Prefix + "." + name)
	for _, ep := range []string{endpointCall, endpointSubmit, endpointStream, endpointDefs} {
		ep := ep
		h := micro.HandlerFunc(func(r micro.Request) { b.dispatch(ep, r) })
		if err := g.AddEndpoint(ep, h); err != nil {
			return fmt.Errorf("mlnats: endpoint %s of %q: %w", ep, name, err)
		}
	}
	// Control subjects are not queue-grouped: a cancel sent before the client knew the
	// node reaches every node, and only the one running the call acts on it.
	for _, s := range []string{b.subj.ctlPrefix + n.cfg.ID, b.subj.ctlAll} {
		sub, err := n.nc.Subscribe(s, b.control)
		if err != nil {
			return fmt.Errorf("mlnats: control subject of %q: %w", name, err)
		}
		b.ctl = append(b.ctl, sub)
	}
	return nil
}

// metadata describes the bridge to `nats micro info`: framework, version, ops and kinds.
func (b *nodeBridge) metadata() map[string]string {
	info := b.a.Info()
	md := maps.Clone(b.n.cfg.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	md["bridge"] = b.name
	md["node"] = b.n.cfg.ID
	md["framework"] = info.Framework
	md["framework_version"] = info.FrameworkVersion
	md["protocol_version"] = fmt.Sprint(info.ProtocolVersion)
	if ops, err := json.Marshal(info.Handlers); err == nil {
		md["ops"] = string(ops)
	}
	return md
}

// control applies a cancel or a stream credit to a call running here (others ignore it).
func (b *nodeBridge) control(m *nats.Msg) {
	b.mu.Lock()
	c := b.calls[m.Header.Get(hID)]
	b.mu.Unlock()
	if c == nil {
		return
	}
	switch m.Header.Get(hCtl) {
	case ctlCancel:
		c.cancel()
	case ctlCredit:
		var n int
		if _, err := fmt.Sscan(m.Header.Get(hCredit), &n); err == nil && n > 0 && c.credit != nil {
			select {
			case c.credit <- n:
			default: // the stream holds more grants than it can use; they add nothing
			}
		}
	}
}

// Shutdown drains the node: its services stop taking requests (they go to other nodes),
// calls in flight finish (until ctx ends; then they are cancelled), then it leaves.
func (n *Node) Shutdown(ctx context.Context) error {
	if n.stopping.Swap(true) {
		return nil
	}
	err := n.stopServices()
	// Requests delivered before the unsubscribe are still being dispatched: wait until the
	// server has the unsubscribes and the count of calls has stayed at zero a moment. Not
	// while the connection is down: nothing is delivered then, and a flush would wait for
	// the server until ctx ends (Close took its whole minute, failing, with no call left).
	if n.nc.IsConnected() {
		fctx, cancel := context.WithTimeout(ctx, flushTimeout)
		_ = n.nc.FlushWithContext(fctx)
		cancel()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for idle := 0; idle < 3; {
		select {
		case <-ctx.Done():
			n.cancelAll()
			n.unsubscribe()
			return errors.Join(err, fmt.Errorf("mlnats: node %s: %d calls still running: %w", n.cfg.ID, n.inflight.Load(), ctx.Err()))
		case <-tick.C:
		}
		if n.inflight.Load() == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	n.unsubscribe()
	n.log.Info("mlnats: node drained and left")
	return err
}

// flushTimeout bounds Shutdown's flush: one round trip, unless the server went away.
const flushTimeout = 2 * time.Second

// Close is Shutdown bounded by a minute.
func (n *Node) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return n.Shutdown(ctx)
}

func (n *Node) stopServices() error {
	var errs []error
	for _, b := range n.bridges {
		if b.svc != nil {
			if err := b.svc.Stop(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (n *Node) unsubscribe() {
	for _, b := range n.bridges {
		for _, s := range b.ctl {
			_ = s.Unsubscribe()
		}
	}
	n.blobs.close()
	n.hostReplies.close()
	if n.stopWatch != nil {
		n.stopWatch()
		n.watching.Wait()
	}
}

func (n *Node) cancelAll() {
	for _, b := range n.bridges {
		b.mu.Lock()
		for _, c := range b.calls {
			c.cancel()
		}
		b.mu.Unlock()
	}
}
