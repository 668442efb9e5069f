package mlnats

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"

	"github.com/mlbridge/mlbridge"
)

// serverConn starts an embedded server and connects to it; both end with the test.
func serverConn(t *testing.T) (*Embedded, *nats.Conn) {
	t.Helper()
	e, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	nc, err := nats.Connect(e.URL(), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return e, nc
}

// forwardTo runs forward as a node would for a call from a client serving on subject.
func forwardTo(t *testing.T, subject string, answer func(m *nats.Msg, nc *nats.Conn)) error {
	t.Helper()
	e, nodeConn := serverConn(t)
	if answer != nil {
		clientConn, err := nats.Connect(e.URL(), nats.MaxReconnects(0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(clientConn.Close)
		if _, err := clientConn.Subscribe(subject, func(m *nats.Msg) { answer(m, clientConn) }); err != nil {
			t.Fatal(err)
		}
		if err := clientConn.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := forward(callerCtx(ctx, hostNode(t, nodeConn), subject), "fn", nil)
	return err
}

// hostNode is as much of a node as forward needs, on nc.
func hostNode(t *testing.T, nc *nats.Conn) *Node {
	t.Helper()
	b := newBlobs(nc, BlobConfig{})
	t.Cleanup(b.close)
	return &Node{nc: nc, blobs: b, cfg: NodeConfig{HostHeartbeat: 20 * time.Millisecond, Propagator: propagation.TraceContext{}}}
}

// callerCtx is ctx as n's handling of a call from a client serving host functions on subject.
func callerCtx(ctx context.Context, n *Node, subject string) context.Context {
	return n.withCaller(ctx, nats.Header{hHost: {subject}, hHostBlobs: {"1"}}, "_INBOX.call")
}

// TestForwardArgumentsToAnOlderClient: a client that does not say it reads stored host-call
// arguments (a version before them) gets no reference it would take for empty arguments:
// arguments over the max payload are the typed error they always were, nothing is stored.
func TestForwardArgumentsToAnOlderClient(t *testing.T) {
	_, nc := serverConn(t) // JetStream on: a current client would get them stored
	n := hostNode(t, nc)
	got := make(chan *nats.Msg, 1)
	if _, err := nc.Subscribe("_INBOX.old", func(m *nats.Msg) { got <- m }); err != nil {
		t.Fatal(err)
	}
	ctx := n.withCaller(context.Background(), nats.Header{hHost: {"_INBOX.old"}}, "_INBOX.call")
	_, err := forward(ctx, "fn", make([]byte, 2<<20))
	if !errors.Is(err, ErrPayloadTooLarge) || !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("got %v, want ErrPayloadTooLarge and invalid_argument", err)
	}
	select {
	case m := <-got:
		t.Fatalf("the older client was sent a host call (Mlb-Blob %q)", m.Header.Get(hBlob))
	default:
	}
}

// TestHostServerResultToAnOlderNode: a host call from a node that does not say it reads
// stored results (a version before them, which would take the reference for an empty
// result) gets a result over the max payload as the typed error it always was.
func TestHostServerResultToAnOlderNode(t *testing.T) {
	ask := hostServerOf(t, mlbridge.Func("big", func(context.Context, struct{}) ([]byte, error) { return make([]byte, 2<<20), nil }))
	for _, current := range []bool{false, true} {
		h := nats.Header{hFn: {"big"}, hID: {"_INBOX.call"}}
		if current {
			h[hHostBlobs] = []string{"1"}
		}
		m := ask(h)
		switch {
		case current && (m.Header.Get(hKind) != kindRes || m.Header.Get(hBlob) == ""):
			t.Fatalf("current node: answer %q, blob %q; want a stored result", m.Header.Get(hKind), m.Header.Get(hBlob))
		case !current && m.Header.Get(hKind) != kindErr:
			t.Fatalf("older node: answer %q (blob %q), want the typed error", m.Header.Get(hKind), m.Header.Get(hBlob))
		case !current:
			if got := decodeError(m.Data); !errors.Is(got, ErrPayloadTooLarge) || !errors.Is(got, mlbridge.ErrSerialization) {
				t.Fatalf("older node: got %v", got)
			}
		}
	}
}

// TestForwardToAGoneClient: nobody listens on the client's subject: unavailable at once.
func TestForwardToAGoneClient(t *testing.T) {
	start := time.Now()
	err := forwardTo(t, "_INBOX.gone", nil)
	if !errors.Is(err, mlbridge.ErrUnavailable) || time.Since(start) > 5*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
	t.Logf("%v", err)
}

// TestForwardRefusesAMalformedResult: a client's result that is not one msgpack value never
// reaches the worker's pipe.
func TestForwardRefusesAMalformedResult(t *testing.T) {
	err := forwardTo(t, "_INBOX.bad", func(m *nats.Msg, nc *nats.Conn) {
		_ = nc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: nats.Header{hKind: {kindRes}}, Data: []byte{0x92, 0x01}})
	})
	if !errors.Is(err, mlbridge.ErrProtocol) {
		t.Fatalf("got %v", err)
	}
}

// TestForwardToASilentClient: a client that took the call and never answers nor beats:
// unavailable after 4 heartbeats, and told to cancel.
func TestForwardToASilentClient(t *testing.T) {
	cancelled := make(chan string, 1)
	err := forwardTo(t, "_INBOX.silent", func(m *nats.Msg, _ *nats.Conn) {
		if m.Header.Get(hCtl) == ctlCancel {
			cancelled <- m.Header.Get(hID)
		}
	})
	if !errors.Is(err, mlbridge.ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("no cancel reached the client")
	}
}

// TestForwardArgumentsOverMaxPayload: arguments too large for one message, and no JetStream
// to store them in: invalid_argument.
func TestForwardArgumentsOverMaxPayload(t *testing.T) {
	e, err := StartEmbedded(EmbeddedConfig{}) // no StoreDir: no JetStream
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	nc, err := nats.Connect(e.URL(), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	_, err = forward(callerCtx(context.Background(), hostNode(t, nc), "_INBOX.client"), "fn", make([]byte, 2<<20))
	if !errors.Is(err, ErrPayloadTooLarge) || !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
}

// TestHostRepliesAfterShutdown: once the node closed its replies' subscription, a host call
// fails with ErrClosed at once, not after the client-silent timeout.
func TestHostRepliesAfterShutdown(t *testing.T) {
	_, nc := serverConn(t)
	var h hostReplies
	if _, _, done, err := h.open(nc, nil); err != nil {
		t.Fatal(err)
	} else {
		done()
	}
	h.close()
	if _, _, _, err := h.open(nc, nil); !errors.Is(err, mlbridge.ErrClosed) {
		t.Fatalf("a host call after shutdown: %v, want ErrClosed", err)
	}
}

// TestForwardResultLost: the client's answer names a stored result that is not there (its
// bucket is missing, or the object): the host call fails at once with ErrBlobLost, as
// unavailable (the category Python sees), not after the client-silent timeout.
func TestForwardResultLost(t *testing.T) {
	for _, ref := range []string{"no-bucket/obj", defaultBlobBucket + "/no-object"} {
		t.Run(ref, func(t *testing.T) {
			err := forwardTo(t, "_INBOX.lost", func(m *nats.Msg, nc *nats.Conn) {
				if bucket, _, _ := strings.Cut(ref, "/"); bucket == defaultBlobBucket {
					b := newBlobs(nc, BlobConfig{})
					defer b.close()
					if _, err := b.store(context.Background(), bucket, true); err != nil {
						t.Error(err)
					}
				}
				_ = nc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: nats.Header{hKind: {kindRes}, hBlob: {ref}}})
			})
			if !errors.Is(err, ErrBlobLost) || !errors.Is(err, mlbridge.ErrUnavailable) || errors.Is(err, mlbridge.ErrTimeout) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// TestForwardDropsALateStoredResult: a stored result that comes after the host call gave up
// is deleted by the node (nobody else would read it), not left to the bucket's TTL.
func TestForwardDropsALateStoredResult(t *testing.T) {
	e, nodeConn := serverConn(t)
	clientConn, err := nats.Connect(e.URL(), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(clientConn.Close)
	client := newBlobs(clientConn, BlobConfig{Threshold: 1})
	t.Cleanup(client.close)
	requests := make(chan *nats.Msg, 1)
	if _, err := clientConn.Subscribe("_INBOX.late", func(m *nats.Msg) {
		if m.Header.Get(hCtl) == "" {
			requests <- m
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := clientConn.Flush(); err != nil {
		t.Fatal(err)
	}
	// Heartbeats are the client's to send; this one sends none, and the node gives up.
	n := hostNode(t, nodeConn)
	if _, err := forward(callerCtx(context.Background(), n, "_INBOX.late"), "fn", nil); !errors.Is(err, mlbridge.ErrUnavailable) {
		t.Fatalf("forward: %v", err)
	}
	req := <-requests
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := nats.Header{hKind: {kindRes}}
	data, ref, err := client.pack(ctx, h, []byte{0xa2, 'o', 'k'}, "a late result", mlbridge.ErrSerialization)
	if err != nil || ref == "" {
		t.Fatalf("storing the late result: %q %v", ref, err)
	}
	s, err := client.store(ctx, defaultBlobBucket, false)
	if err != nil {
		t.Fatal(err)
	}
	_, name, _ := strings.Cut(ref, "/")
	if _, err := s.GetInfo(ctx, name); err != nil {
		t.Fatalf("the stored result is not there to begin with: %v", err)
	}
	if err := clientConn.PublishMsg(&nats.Msg{Subject: req.Reply, Header: h, Data: data}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := s.GetInfo(ctx, name)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("the late result is still stored after 10s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHostServerArgumentsLost: a host call whose stored arguments are gone fails with
// ErrBlobLost, as unavailable, without running the function.
func TestHostServerArgumentsLost(t *testing.T) {
	ran := make(chan struct{}, 1)
	ask := hostServerOf(t, mlbridge.Func("fn", func(context.Context, struct{}) (int, error) {
		ran <- struct{}{}
		return 1, nil
	}))
	for _, ref := range []string{"no-bucket/obj", "bad reference"} {
		m := ask(nats.Header{hFn: {"fn"}, hID: {"_INBOX.call"}, hBlob: {ref}})
		if m.Header.Get(hKind) != kindErr {
			t.Fatalf("%s: answer %q, want an error", ref, m.Header.Get(hKind))
		}
		if got := decodeError(m.Data); !errors.Is(got, ErrBlobLost) || !errors.Is(got, mlbridge.ErrUnavailable) {
			t.Fatalf("%s: got %v", ref, got)
		}
	}
	select {
	case <-ran:
		t.Fatal("the function ran without its arguments")
	default:
	}
}

// hostServerOf serves f as a client's host functions on a server of its own (JetStream on),
// with every call's ctx bounded by 10 s; ask sends one host call with header h, as a node
// would, and returns its answer (heartbeats skipped).
func hostServerOf(t *testing.T, f ...mlbridge.HostFunc) (ask func(h nats.Header) *nats.Msg) {
	t.Helper()
	_, nc := serverConn(t)
	b := newBlobs(nc, BlobConfig{})
	t.Cleanup(b.close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	s, err := newHostServer(nc, b, f, func(string) context.Context { return ctx }, propagation.TraceContext{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.close() })
	return func(h nats.Header) *nats.Msg {
		t.Helper()
		reply, err := nc.SubscribeSync(nc.NewInbox())
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.PublishMsg(&nats.Msg{Subject: s.subject, Reply: reply.Subject, Header: h}); err != nil {
			t.Fatal(err)
		}
		m, err := reply.NextMsgWithContext(ctx)
		for err == nil && m.Header.Get(hKind) == kindHB {
			m, err = reply.NextMsgWithContext(ctx)
		}
		if err != nil {
			t.Fatalf("host call %v: no answer: %v", h, err)
		}
		return m
	}
}
