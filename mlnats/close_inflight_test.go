package mlnats_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// settledGoroutines waits until the number of goroutines is at most want (or 5 s pass) and
// returns it.
func settledGoroutines(want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stableGoroutines is the number of goroutines once it has stopped falling for 200 ms
// (at most 3 s).
func stableGoroutines() int {
	n := runtime.NumGoroutine()
	for start, same := time.Now(), 0; same < 4 && time.Since(start) < 3*time.Second; {
		time.Sleep(50 * time.Millisecond)
		if m := runtime.NumGoroutine(); m < n {
			n, same = m, 0
		} else {
			same++
		}
	}
	return n
}

// TestRemoteCloseInFlight: a Remote closed while a call, a submitted call, a stream, a
// large argument's upload and a host call are in flight: each returns ErrClosed at once
// (the upload waited for its ctx to end: its connection closed under the put), and once the
// Remote's connection is closed too no goroutine is left behind, here or on the node.
func TestRemoteCloseInFlight(t *testing.T) {
	e := embedded(t)
	blocking := mlbridge.Func("block", func(ctx context.Context, _ struct{}) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	blobs := mlnats.BlobConfig{Bucket: "close-test", Threshold: 1 << 10}
	startNodeWith(t, e, func(c *mlnats.NodeConfig) { c.Blobs = blobs },
		func(c *mlbridge.PoolConfig) { c.HostFuncs = []mlbridge.HostFunc{mlnats.ForwardFunc(blocking)} })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	round := func() {
		nc, err := nats.Connect(e.URL(), nats.MaxReconnects(0))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		// LostAfter well past the test: a 64 MiB upload under -race can starve the process for
		// a second, and a call given up as ErrNodeLost before Close proves nothing here.
		r, err := mlnats.Dial(ctx, nc, "echo", mlnats.Options{Logger: quiet, Blobs: blobs, HostFuncs: []mlbridge.HostFunc{blocking}, LostAfter: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		type outcome struct {
			what string
			err  error
		}
		errs := make(chan outcome, 5)
		go func() { _, err := r.Call(ctx, "sleep", map[string]any{"seconds": 30}); errs <- outcome{"call", err} }()
		go func() {
			_, err := r.Submit(ctx, "sleep", map[string]any{"seconds": 30}).Wait(ctx)
			errs <- outcome{"submit", err}
		}()
		go func() {
			var last error
			for _, err := range r.Stream(ctx, "count", map[string]any{"n": 100000, "delay": 0.01}) {
				last = err
			}
			errs <- outcome{"stream", last}
		}()
		go func() {
			_, err := r.Call(ctx, "echo", map[string]any{"value": make([]byte, 64<<20)})
			errs <- outcome{"upload", err}
		}()
		go func() {
			_, err := r.Call(ctx, "host_call", map[string]any{"fn": "block"})
			errs <- outcome{"host call", err}
		}()
		time.Sleep(300 * time.Millisecond)
		closed := time.Now()
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		for range 5 {
			select {
			case o := <-errs:
				t.Logf("%s: returned %v after Close", o.what, time.Since(closed))
				if !errors.Is(o.err, mlbridge.ErrClosed) {
					t.Errorf("%s in flight at Close: %v, want ErrClosed", o.what, o.err)
				}
			case <-time.After(5 * time.Second):
				buf := make([]byte, 1<<20)
				t.Fatalf("an operation in flight did not return within 5 s of Close\n%s", buf[:runtime.Stack(buf, true)])
			}
		}
		t.Logf("all returned %v after Close", time.Since(closed))
	}
	round() // warm up: the node's values connection, the pool's workers
	before := stableGoroutines()
	round()
	if after := settledGoroutines(before); after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after a Remote closed with operations in flight\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// TestNodeShutdownInFlight: a node shut down with a short ctx while it runs a call, a
// stream, a large result's upload and a host call: Shutdown returns soon after its ctx
// ends, each caller gets a typed error, and no goroutine of the node is left.
func TestNodeShutdownInFlight(t *testing.T) {
	e := embedded(t)
	blocking := mlbridge.Func("block", func(ctx context.Context, _ struct{}) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	blobs := mlnats.BlobConfig{Bucket: "shutdown-test", Threshold: 1 << 10}
	pool := openPool(t, func(c *mlbridge.PoolConfig) { c.HostFuncs = []mlbridge.HostFunc{mlnats.ForwardFunc(blocking)} })
	var r *mlnats.Remote // dialled once a node serves
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	round := func() {
		nc, err := nats.Connect(e.URL(), nats.MaxReconnects(0))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		node, err := mlnats.NewNode(nc, mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{"echo": pool}, Blobs: blobs, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if r == nil {
			r = dial(t, e, mlnats.Options{Blobs: blobs, HostFuncs: []mlbridge.HostFunc{blocking}, Heartbeat: 50 * time.Millisecond})
		}
		type outcome struct {
			what string
			err  error
		}
		errs := make(chan outcome, 4)
		go func() { _, err := r.Call(ctx, "sleep", map[string]any{"seconds": 30}); errs <- outcome{"call", err} }()
		go func() {
			var last error
			for _, err := range r.Stream(ctx, "count", map[string]any{"n": 100000, "delay": 0.01}) {
				last = err
			}
			errs <- outcome{"stream", last}
		}()
		go func() {
			_, err := r.Call(ctx, "big", map[string]any{"n": 32 << 20})
			errs <- outcome{"large result", err}
		}()
		go func() {
			_, err := r.Call(ctx, "host_call", map[string]any{"fn": "block"})
			errs <- outcome{"host call", err}
		}()
		time.Sleep(400 * time.Millisecond)
		sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer scancel()
		start := time.Now()
		err = node.Shutdown(sctx)
		t.Logf("Shutdown returned after %v: %v", time.Since(start), err)
		if time.Since(start) > 2*time.Second {
			t.Errorf("Shutdown with a 200 ms ctx took %v", time.Since(start))
		}
		for range 4 {
			select {
			case o := <-errs:
				t.Logf("%s: %v after Shutdown began: %v", o.what, time.Since(start), o.err)
				if o.err == nil {
					// The large result may have been done before the shutdown.
					if o.what != "large result" {
						t.Errorf("%s in flight at Shutdown: no error", o.what)
					}
					continue
				}
				var rne *mlnats.RemoteNodeError
				if !errors.Is(o.err, mlbridge.ErrCancelled) && !errors.Is(o.err, mlnats.ErrNodeLost) && !errors.Is(o.err, mlbridge.ErrClosed) && !errors.As(o.err, &rne) {
					t.Errorf("%s in flight at Shutdown: %v, untyped", o.what, o.err)
				}
			case <-time.After(5 * time.Second):
				buf := make([]byte, 1<<20)
				t.Fatalf("a call in flight did not end within 5 s of Shutdown\n%s", buf[:runtime.Stack(buf, true)])
			}
		}
	}
	round()
	before := stableGoroutines()
	round()
	if after := settledGoroutines(before); after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after a node shut down with calls in flight\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}
