package mlnats_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// objects lists the live objects of bucket. A list that runs while objects are being
// deleted can wait for entries the deletes removed (until its ctx ends): it is tried again.
func objects(t *testing.T, e *mlnats.Embedded, bucket string) []string {
	t.Helper()
	js, err := jetstream.New(connect(t, e))
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		names, err := listObjects(ctx, js, bucket)
		cancel()
		if err == nil {
			return names
		}
		if !errors.Is(err, context.DeadlineExceeded) || attempt == 4 {
			t.Fatal(err)
		}
	}
}

func listObjects(ctx context.Context, js jetstream.JetStream, bucket string) ([]string, error) {
	obs, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		return nil, err
	}
	infos, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, i := range infos {
		names = append(names, i.Name)
	}
	return names, nil
}

// TestLargePayloads: a 100 MB float64 array crosses to a node's Python worker and back
// through the Object Store, stream chunks over the max payload too, and nothing is left in
// the bucket afterwards.
func TestLargePayloads(t *testing.T) {
	e := embedded(t)
	startNode(t, e, func(c *mlbridge.PoolConfig) { c.MaxFrame = 256 << 20 })
	// This process holds the server, the client and the node: under -race, its 100 MB
	// buffers stall all three at once for over a second (measured: 1.16 s between two of
	// the node's heartbeats), which the default LostAfter (1 s) would take for a dead node.
	r := dial(t, e, mlnats.Options{LostAfter: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	data := make([]float64, 100<<20/8)
	for i := range data {
		data[i] = float64(i) * 0.5
	}
	arr, err := mlbridge.Float64Array(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := mlbridge.Decode[mlbridge.Array](r.Call(ctx, "echo", map[string]any{"value": arr}))
	if err != nil {
		t.Fatal(err)
	}
	back, err := got.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(data) {
		t.Fatalf("%d values back, sent %d", len(back), len(data))
	}
	for i := range data {
		if back[i] != data[i] {
			t.Fatalf("value %d: %v, sent %v", i, back[i], data[i])
		}
	}
	data, back, arr, got = nil, nil, mlbridge.Array{}, mlbridge.Array{} // 400 MB the rest of the test does not need

	const chunk = 3 << 20
	n := 0
	for res, err := range r.Stream(ctx, "big_chunks", map[string]any{"n": 3, "size": chunk}) {
		if err != nil {
			t.Fatal(err)
		}
		b, err := mlbridge.Decode[[]byte](res, nil)
		if err != nil || len(b) != chunk {
			t.Fatalf("chunk %d: %d bytes, %v", n, len(b), err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d chunks, want 3", n)
	}
	// Deletes run off the caller's path: they follow the calls shortly.
	waitFor(t, "no object left in the bucket after the calls", func() bool { return len(objects(t, e, "mlbridge-blobs")) == 0 })
}

// TestPayloadTooLargeWithoutJetStream: with no JetStream, a value over the max payload fails
// at once with ErrPayloadTooLarge (and the class of error it was before: invalid arguments,
// or a result that cannot be serialized), in both directions and for stream chunks.
func TestPayloadTooLargeWithoutJetStream(t *testing.T) {
	e, err := mlnats.StartEmbedded(mlnats.EmbeddedConfig{}) // no StoreDir: no JetStream
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	startNode(t, e)
	r := dial(t, e, mlnats.Options{})
	// The deadline only tells a hang from an answer: each call below fails in a few round trips.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err = r.Call(ctx, "echo", map[string]any{"value": make([]byte, 2<<20)})
	if !errors.Is(err, mlnats.ErrPayloadTooLarge) || !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("2 MiB of arguments: %v", err)
	}
	_, err = r.Call(ctx, "big", map[string]any{"n": 2 << 20})
	if !errors.Is(err, mlnats.ErrPayloadTooLarge) || !errors.Is(err, mlbridge.ErrSerialization) {
		t.Fatalf("2 MiB result: %v", err)
	}
	var streamErr error
	for _, err := range r.Stream(ctx, "big_chunks", map[string]any{"n": 2, "size": 2 << 20}) {
		if err != nil {
			streamErr = err
		}
	}
	if !errors.Is(streamErr, mlnats.ErrPayloadTooLarge) || !errors.Is(streamErr, mlbridge.ErrSerialization) {
		t.Fatalf("2 MiB chunk: %v", streamErr)
	}
	if ctx.Err() != nil {
		t.Fatal("a call waited for its deadline instead of failing")
	}
	// Small values still go.
	if got, err := mlbridge.Decode[string](r.Call(ctx, "echo", map[string]any{"value": "small"})); err != nil || got != "small" {
		t.Fatalf("small call: %q, %v", got, err)
	}
}

// TestBlobTTL: the bucket's TTL removes what a crashed side leaves behind, and a stored
// chunk read after it expired fails with ErrBlobLost (a consumer slower than the TTL).
func TestBlobTTL(t *testing.T) {
	e := embedded(t)
	blobs := mlnats.BlobConfig{Bucket: "ttl-test", TTL: time.Second, Threshold: 1 << 10}
	startNodeWith(t, e, func(c *mlnats.NodeConfig) { c.Blobs = blobs })
	r := dial(t, e, mlnats.Options{Blobs: blobs})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Arguments and a result over the (lowered) threshold: through the bucket, then gone.
	got, err := mlbridge.Decode[[]byte](r.Call(ctx, "echo", map[string]any{"value": make([]byte, 4<<10)}))
	if err != nil || len(got) != 4<<10 {
		t.Fatalf("echo through the bucket: %d bytes, %v", len(got), err)
	}
	// Deletes run off the caller's path (dropLater), so they are waited for, not read at once.
	waitFor(t, "no object left after the call", func() bool { return len(objects(t, e, "ttl-test")) == 0 })

	// What a crashed client would leave: an object nobody deletes.
	js, err := jetstream.New(connect(t, e))
	if err != nil {
		t.Fatal(err)
	}
	obs, err := js.ObjectStore(ctx, "ttl-test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := obs.Status(ctx)
	if err != nil || st.TTL() != time.Second {
		t.Fatalf("bucket TTL %v, %v; want 1s", st.TTL(), err)
	}
	if _, err := obs.PutBytes(ctx, "orphan", make([]byte, 4<<10)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); len(objects(t, e, "ttl-test")) > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the orphaned object outlived the bucket's TTL by 14s")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A consumer that waits past the TTL before reading a stored chunk.
	var errs []error
	first := true
	for _, err := range r.Stream(ctx, "big_chunks", map[string]any{"n": 2, "size": 4 << 10}) {
		if first {
			first = false
			time.Sleep(4 * time.Second) // the second chunk, stored by now, expires meanwhile
		}
		errs = append(errs, err)
	}
	if len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], mlnats.ErrBlobLost) {
		t.Fatalf("stream with a slow consumer: %v", errs)
	}
}

// TestBlobConnection: values travel on a connection of the Remote's own, which closes with
// it, without firing the owner's connection handlers; the owner's connection stays open.
func TestBlobConnection(t *testing.T) {
	e := embedded(t)
	startNode(t, e)
	var closed, disconnected atomic.Int32
	nc, err := nats.Connect(e.URL(), nats.MaxReconnects(0),
		nats.ClosedHandler(func(*nats.Conn) { closed.Add(1) }),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { disconnected.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := mlnats.Dial(ctx, nc, "echo", mlnats.Options{Logger: quiet, Blobs: mlnats.BlobConfig{Threshold: 1 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	before := e.Server().NumClients()
	if got, err := mlbridge.Decode[[]byte](r.Call(ctx, "echo", map[string]any{"value": make([]byte, 8<<10)})); err != nil || len(got) != 8<<10 {
		t.Fatalf("echo through the bucket: %d bytes, %v", len(got), err)
	}
	if n := e.Server().NumClients(); n != before+2 {
		t.Fatalf("%d clients after a stored value, %d before: want two more (the client's and the node's values' connections)", n, before)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the values' connection closes with the Remote", func() bool { return e.Server().NumClients() == before+1 })
	time.Sleep(50 * time.Millisecond) // handlers run on nats.go's callback goroutine
	if closed.Load() != 0 || disconnected.Load() != 0 || nc.IsClosed() {
		t.Fatalf("owner's connection: closed handler %d, disconnect handler %d, closed %v", closed.Load(), disconnected.Load(), nc.IsClosed())
	}
}

// TestBlobRetry: an idempotent call whose stored arguments a node read before it died is
// retried on another node, which reads them again; they are deleted once the call is over.
func TestBlobRetry(t *testing.T) {
	e := embedded(t)
	blobs := mlnats.BlobConfig{Bucket: "retry-test", Threshold: 1 << 10}
	nodes := []*testNode{startNode(t, e), startNode(t, e)}
	r := dial(t, e, mlnats.Options{Heartbeat: 50 * time.Millisecond, Blobs: blobs})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	value := make([]byte, 8<<10)
	value[0], value[len(value)-1] = 7, 9
	type result struct {
		got []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := mlbridge.Decode[[]byte](r.Call(ctx, "sleep_echo", map[string]any{"value": value, "seconds": 1.0}, mlbridge.Idempotent()))
		done <- result{got, err}
	}()
	var took *testNode
	waitFor(t, "a node takes the call", func() bool {
		for _, n := range nodes {
			if n.c.n.Load() > 0 {
				took = n
				return true
			}
		}
		return false
	})
	took.kill()
	res := <-done
	if res.err != nil || len(res.got) != len(value) || res.got[0] != 7 || res.got[len(value)-1] != 9 {
		t.Fatalf("retried call: %d bytes, %v", len(res.got), res.err)
	}
	other := nodes[0]
	if took == other {
		other = nodes[1]
	}
	if other.c.n.Load() != 1 {
		t.Fatalf("the other node served %d calls, want the retry", other.c.n.Load())
	}
	waitFor(t, "no object left after the retried call", func() bool { return len(objects(t, e, "retry-test")) == 0 })
}

// TestBlobStreamStopped: a consumer that stops a stream early leaves no stored chunk behind
// (the bucket's TTL is 15 minutes: only the client's cleanup can empty it here), neither
// the chunks queued for it nor those the node sent before it heard the cancel.
func TestBlobStreamStopped(t *testing.T) {
	e := embedded(t)
	blobs := mlnats.BlobConfig{Bucket: "stopped-test", Threshold: 1 << 10}
	startNodeWith(t, e, func(c *mlnats.NodeConfig) { c.Blobs = blobs })
	r := dial(t, e, mlnats.Options{Blobs: blobs})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, err := range r.Stream(ctx, "big_chunks", map[string]any{"n": 20, "size": 4 << 10}) {
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // the node stores chunks ahead meanwhile
		break
	}
	waitFor(t, "stored chunks of a stopped stream deleted", func() bool { return len(objects(t, e, "stopped-test")) == 0 })
}

// TestBlobDeadline: a deadline that ends while large arguments are being stored fails the
// call with ErrTimeout (not as a payload problem), and the half-stored value goes.
func TestBlobDeadline(t *testing.T) {
	e := embedded(t)
	blobs := mlnats.BlobConfig{Bucket: "deadline-test", Threshold: 1 << 10}
	startNode(t, e)
	r := dial(t, e, mlnats.Options{Blobs: blobs})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.Call(ctx, "echo", map[string]any{"value": make([]byte, 4<<10)}); err != nil { // creates the bucket
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	_, err := r.Call(short, "echo", map[string]any{"value": make([]byte, 64<<20)})
	if !errors.Is(err, mlbridge.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, mlnats.ErrPayloadTooLarge) {
		t.Fatalf("64 MiB of arguments with a 20 ms deadline: %v", err)
	}
	waitFor(t, "a put cut short leaves no object", func() bool { return len(objects(t, e, "deadline-test")) == 0 })
}
