package mlnats_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
	"github.com/mlbridge/mlbridge/store"
)

// restartable is an embedded server that can be shut down and started again on the same
// port with the same JetStream store directory.
type restartable struct {
	t    *testing.T
	dir  string
	port int
	e    *mlnats.Embedded
}

func startRestartable(t *testing.T) *restartable {
	t.Helper()
	s := &restartable{t: t, dir: t.TempDir()}
	s.start()
	_, p, _ := splitPort(s.e.Addr())
	s.port = p
	t.Cleanup(func() {
		if s.e != nil {
			s.e.Close()
		}
	})
	return s
}

func splitPort(addr string) (string, int, error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			p, err := strconv.Atoi(addr[i+1:])
			return addr[:i], p, err
		}
	}
	return addr, 0, errors.New("no port")
}

func (s *restartable) start() {
	s.t.Helper()
	e, err := mlnats.StartEmbedded(mlnats.EmbeddedConfig{StoreDir: s.dir, Port: s.port})
	if err != nil {
		s.t.Fatal(err)
	}
	s.e = e
}

func (s *restartable) stop() {
	s.e.Close()
	s.e = nil
}

// reconnecting connects with reconnects forever, retried every wait.
func reconnecting(t *testing.T, url string, wait time.Duration) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(wait), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestServerRestart: the NATS server is shut down and started again (same port, same
// JetStream store) while a call, a stream and the node's definitions watch are active. The
// call and the stream fail with ErrNodeLost at once, new calls are served as soon as the
// server is back, and a definition written while the node's watch was still reconnecting
// reaches its worker right after it reconnects: the watch used to stay deaf for 10–20 s,
// until nats.go's ordered consumer missed two idle heartbeats.
func TestServerRestart(t *testing.T) {
	srv := startRestartable(t)
	url := srv.e.URL()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kvOn := func(nc *nats.Conn) *mlnats.KVStore {
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := mlnats.OpenKVStore(ctx, js, "defs")
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	// The node's store (and watch) reconnects after 500 ms; the writer's at once.
	const watchReconnect = 500 * time.Millisecond
	kv := kvOn(reconnecting(t, url, watchReconnect))
	writer := kvOn(reconnecting(t, url, 20*time.Millisecond))
	pool := openPool(t, func(c *mlbridge.PoolConfig) { c.Store = kv })
	nodeNC := reconnecting(t, url, 50*time.Millisecond)
	blobs := mlnats.BlobConfig{Bucket: "restart-test", Threshold: 1 << 10}
	node, err := mlnats.NewNode(nodeNC, mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{"echo": pool}, Definitions: kv, Logger: quiet, Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	r, err := mlnats.Dial(ctx, reconnecting(t, url, 50*time.Millisecond), "echo", mlnats.Options{Logger: quiet, Heartbeat: 50 * time.Millisecond, Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := pool.Create(ctx, store.Definition{ID: "cfg", Kind: "config", Global: true, Spec: map[string]any{"mode": "before"}}); err != nil {
		t.Fatal(err)
	}
	// Large values through the Object Store, before and after: both sides' values
	// connections reconnect too.
	large := func() error {
		_, err := r.Call(ctx, "echo", map[string]any{"value": make([]byte, 8<<10)})
		return err
	}
	if err := large(); err != nil {
		t.Fatal(err)
	}

	// In flight: a call and a stream.
	callErr := make(chan error, 1)
	go func() {
		_, err := r.Call(ctx, "sleep", map[string]any{"seconds": 3})
		callErr <- err
	}()
	streamErr := make(chan error, 1)
	go func() {
		var last error
		for _, err := range r.Stream(ctx, "count", map[string]any{"n": 100000, "delay": 0.01}) {
			if err != nil {
				last = err
			}
		}
		streamErr <- last
	}()
	time.Sleep(300 * time.Millisecond)
	down := time.Now()
	srv.stop()
	for what, ch := range map[string]chan error{"call": callErr, "stream": streamErr} {
		select {
		case err := <-ch:
			t.Logf("%s in flight across the restart: %v after %v", what, err, time.Since(down))
			if !errors.Is(err, mlnats.ErrNodeLost) {
				t.Errorf("%s in flight: %v, want ErrNodeLost", what, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s in flight: no answer 5 s after the server went down", what)
		}
	}
	srv.start()
	up := time.Now()

	// A change written as soon as the server is back, while the node's watch is still down.
	waitFor(t, "writer reconnected", func() bool {
		_, err := writer.Put(ctx, store.Definition{ID: "cfg", Kind: "config", Global: true, Spec: map[string]any{"mode": "after"}})
		return err == nil
	})
	// New calls are served: the micro services are back.
	waitFor(t, "calls served again", func() bool {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		defer ccancel()
		_, err := r.Call(cctx, "noop", nil)
		return err == nil
	})
	t.Logf("calls served %v after the server came back", time.Since(up))
	waitFor(t, "large values served again", func() bool { return large() == nil })
	// And discovery: `nats micro ls` finds the service again.
	if _, err := reconnecting(t, url, 50*time.Millisecond).Request("$SRV.PING.mlbridge-echo", nil, 2*time.Second); err != nil {
		t.Fatalf("micro discovery after the restart: %v", err)
	}
	setting := func() any {
		v, err := mlbridge.Decode[map[string]any](pool.Call(ctx, "get_setting", map[string]any{"name": "mode"}))
		if err != nil {
			t.Fatal(err)
		}
		return v["value"]
	}
	for setting() != "after" && time.Since(up) < 5*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(up)
	t.Logf("the change made while the watch was down applied %v after the server came back", took)
	if took > watchReconnect+2*time.Second {
		t.Fatalf("the change made while the watch was down: not applied %v after the server came back", took)
	}
	// And one made well after: the watch follows on.
	if _, err := writer.Put(ctx, store.Definition{ID: "cfg", Kind: "config", Global: true, Spec: map[string]any{"mode": "later"}}); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, "a later change reached the worker", func() bool { return setting() == "later" })
	t.Logf("later change applied after %v", took)
}

// TestNodeShutdownServerDown: a node shut down while its server is unreachable, with no
// call in flight, leaves at once: it waited for its flush until ctx ended (Close took its
// whole minute, and failed with "0 calls still running").
func TestNodeShutdownServerDown(t *testing.T) {
	srv := startRestartable(t)
	pool := openPool(t)
	node, err := mlnats.NewNode(reconnecting(t, srv.e.URL(), 50*time.Millisecond), mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{"echo": pool}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv.stop()
	time.Sleep(100 * time.Millisecond) // the node sees its connection drop
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err = node.Shutdown(ctx)
	t.Logf("Shutdown with the server down: %v after %v", err, time.Since(start))
	if err != nil || time.Since(start) > 2*time.Second {
		t.Fatalf("Shutdown with the server down and no call in flight: %v after %v", err, time.Since(start))
	}
}

// TestAbandonedCallsStopAfterRestart: across a server restart a client gives up on its
// calls (ErrNodeLost: no heartbeat came for LostAfter) without the node knowing; the node
// runs them on after it reconnects, and the client, alive, listens on its reply subjects,
// so the node's probes find it there. When the node's heartbeats for a call it has given
// up on reach it, the client tells the node to cancel: the stream waited for credit
// forever before, and the call ran to its end.
func TestAbandonedCallsStopAfterRestart(t *testing.T) {
	srv := startRestartable(t)
	url := srv.e.URL()
	startNodeOn := func() {
		pool := openPool(t)
		node, err := mlnats.NewNode(reconnecting(t, url, 50*time.Millisecond), mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{"echo": pool}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = node.Close() })
	}
	startNodeOn()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := mlnats.Dial(ctx, reconnecting(t, url, 50*time.Millisecond), "echo", mlnats.Options{Logger: quiet, Heartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	errs := make(chan error, 2)
	go func() {
		_, err := r.Call(ctx, "sleep", map[string]any{"seconds": 600, "token": "abandoned-call"})
		errs <- err
	}()
	go func() {
		var last error
		for _, err := range r.Stream(ctx, "count", map[string]any{"n": 100000, "delay": 0.002, "token": "abandoned-stream"}) {
			if err != nil {
				last = err
			}
		}
		errs <- last
	}()
	time.Sleep(300 * time.Millisecond)
	srv.stop()
	for range 2 {
		if err := <-errs; !errors.Is(err, mlnats.ErrNodeLost) {
			t.Fatalf("in flight across the restart: %v, want ErrNodeLost", err)
		}
	}
	srv.start()
	up := time.Now()
	for _, token := range []string{"abandoned-call", "abandoned-stream"} {
		waitFor(t, token+" cancelled on the node", func() bool {
			cctx, ccancel := context.WithTimeout(ctx, time.Second)
			defer ccancel()
			toks, err := mlbridge.Decode[[]string](r.Call(cctx, "cancelled_tokens", nil))
			return err == nil && slices.Contains(toks, token)
		})
		t.Logf("%s cancelled on the node %v after the server came back", token, time.Since(up))
	}
}
