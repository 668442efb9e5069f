package mlnats_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mlbridge/mlbridge/mlnats"
)

// flakyLink is a loopback TCP proxy to a NATS server whose connections can be cut, and new
// ones refused, for a while: a client's network blip.
type flakyLink struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	conns   []net.Conn
	downTil time.Time
}

func newFlakyLink(t *testing.T, serverURL string) *flakyLink {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &flakyLink{ln: ln, target: u.Host}
	t.Cleanup(func() { _ = ln.Close(); l.cut(0) })
	go l.serve()
	return l
}

func (l *flakyLink) url() string { return "nats://" + l.ln.Addr().String() }

func (l *flakyLink) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		down := time.Now().Before(l.downTil)
		l.mu.Unlock()
		if down {
			_ = c.Close()
			continue
		}
		s, err := net.Dial("tcp", l.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		l.mu.Lock()
		l.conns = append(l.conns, c, s)
		l.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
		go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
	}
}

// cut closes every connection through the link and refuses new ones for d.
func (l *flakyLink) cut(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.downTil = time.Now().Add(d)
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

// TestClientReconnectKeepsItsLongCall: a client whose connection drops for 1.5 s during a
// call, and which waits for its node that long (LostAfter 20 s), gets its call's answer once
// it reconnects: the node, which cannot reach the client meanwhile, waits the client's
// LostAfter (sent with the request) before it takes it for gone and cancels the call.
func TestClientReconnectKeepsItsLongCall(t *testing.T) {
	e := embedded(t)
	startNode(t, e)
	link := newFlakyLink(t, e.URL())
	nc, err := nats.Connect(link.url(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := mlnats.Dial(ctx, nc, "echo", mlnats.Options{Logger: quiet, LostAfter: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		time.Sleep(700 * time.Millisecond) // the call is running on the node
		link.cut(1500 * time.Millisecond)
	}()
	start := time.Now()
	if _, err := r.Call(ctx, "sleep", map[string]any{"seconds": 3.0}); err != nil {
		t.Fatalf("a 3 s call across a 1.5 s outage of its client's link: %v after %v", err, time.Since(start).Round(time.Millisecond))
	}
	t.Logf("answered after %v", time.Since(start).Round(time.Millisecond))
}
