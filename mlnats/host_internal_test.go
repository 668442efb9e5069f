package mlnats

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
	n := &Node{nc: nodeConn, cfg: NodeConfig{HostHeartbeat: 20 * time.Millisecond, Propagator: propagation.TraceContext{}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = n.withCaller(ctx, nats.Header{hHost: {subject}}, "_INBOX.call")
	_, err := forward(ctx, "fn", nil)
	return err
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

// TestForwardArgumentsOverMaxPayload: arguments too large for one message: invalid_argument.
func TestForwardArgumentsOverMaxPayload(t *testing.T) {
	_, nc := serverConn(t)
	n := &Node{nc: nc, cfg: NodeConfig{HostHeartbeat: 20 * time.Millisecond, Propagator: propagation.TraceContext{}}}
	ctx := n.withCaller(context.Background(), nats.Header{hHost: {"_INBOX.client"}}, "_INBOX.call")
	_, err := forward(ctx, "fn", make([]byte, 2<<20))
	if !errors.Is(err, ErrPayloadTooLarge) || !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
}

// TestHostRepliesAfterShutdown: once the node closed its replies' subscription, a host call
// fails with ErrClosed at once, not after the client-silent timeout.
func TestHostRepliesAfterShutdown(t *testing.T) {
	_, nc := serverConn(t)
	var h hostReplies
	if _, _, done, err := h.open(nc); err != nil {
		t.Fatal(err)
	} else {
		done()
	}
	h.close()
	if _, _, _, err := h.open(nc); !errors.Is(err, mlbridge.ErrClosed) {
		t.Fatalf("a host call after shutdown: %v, want ErrClosed", err)
	}
}
