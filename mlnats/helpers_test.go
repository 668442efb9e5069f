package mlnats_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/mlnats"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// embedded starts a loopback NATS server with JetStream in a temp dir.
func embedded(t *testing.T) *mlnats.Embedded {
	t.Helper()
	e, err := mlnats.StartEmbedded(mlnats.EmbeddedConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func connect(t *testing.T, e *mlnats.Embedded) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(e.URL(), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func openPool(t *testing.T, mutate ...func(*mlbridge.PoolConfig)) *mlbridge.Pool {
	t.Helper()
	cfg := mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: testenv.EchoBridge, Python: testenv.Python(t), Logger: quiet},
		Size:   1,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := mlbridge.OpenPool(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// counting counts the calls an adapter served: which node took them.
type counting struct {
	mlbridge.Adapter
	n atomic.Int64
}

func (c *counting) Call(ctx context.Context, op string, args any, opts ...mlbridge.CallOption) (mlbridge.Result, error) {
	c.n.Add(1)
	return c.Adapter.Call(ctx, op, args, opts...)
}

// testNode is a node on its own connection, serving one pool as bridge "echo".
type testNode struct {
	node *mlnats.Node
	nc   *nats.Conn
	pool *mlbridge.Pool
	c    *counting
	once sync.Once
}

func startNode(t *testing.T, e *mlnats.Embedded, mutate ...func(*mlbridge.PoolConfig)) *testNode {
	t.Helper()
	return startNodeWith(t, e, func(*mlnats.NodeConfig) {}, mutate...)
}

// startNodeWith is startNode with the node's config changed by configure.
func startNodeWith(t *testing.T, e *mlnats.Embedded, configure func(*mlnats.NodeConfig), mutate ...func(*mlbridge.PoolConfig)) *testNode {
	t.Helper()
	p := openPool(t, mutate...)
	nc := connect(t, e)
	c := &counting{Adapter: p}
	cfg := mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{"echo": c}, Logger: quiet}
	configure(&cfg)
	n, err := mlnats.NewNode(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{node: n, nc: nc, pool: p, c: c}
	t.Cleanup(func() { tn.kill() })
	return tn
}

// kill stops the node as kill -9 would: its connection drops with calls in flight, nothing
// is drained; its pool goes down behind it.
func (n *testNode) kill() {
	n.once.Do(func() {
		n.nc.Close()
		go n.pool.Close()
	})
}

func dial(t *testing.T, e *mlnats.Embedded, opt mlnats.Options) *mlnats.Remote {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = quiet
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := mlnats.Dial(ctx, connect(t, e), "echo", opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func benchPool(b *testing.B) *mlbridge.Pool {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: testenv.EchoBridge, Python: testenv.Python(b), Logger: quiet}, Size: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

func benchConn(b *testing.B, e *mlnats.Embedded) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(e.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

// Refresh passes a watched definition change on to the pool (counting hides its methods).
func (c *counting) Refresh(ctx context.Context, id string) error {
	if r, ok := c.Adapter.(mlnats.Refresher); ok {
		return r.Refresh(ctx, id)
	}
	return nil
}
