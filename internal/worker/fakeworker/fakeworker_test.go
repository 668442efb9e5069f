package fakeworker_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/worker"
	"github.com/mlbridge/mlbridge/internal/worker/fakeworker"
)

func start(t *testing.T, l *fakeworker.Launcher) *worker.Worker {
	t.Helper()
	w, err := worker.Start(context.Background(), config(l))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Kill("test over"); <-w.Done() })
	return w
}

func config(l *fakeworker.Launcher) worker.Config {
	return worker.Config{
		Launcher: l, HandshakeTimeout: 2 * time.Second, HeartbeatInterval: 10 * time.Millisecond,
		LivenessTimeout: 50 * time.Millisecond, HeartbeatTimeout: 200 * time.Millisecond,
		ShutdownGrace: 50 * time.Millisecond, KillDelay: 50 * time.Millisecond,
	}
}

func call(t *testing.T, w *worker.Worker, ctx context.Context, op string, args any) (msgpack.RawMessage, error) {
	t.Helper()
	c, err := w.Send(ctx, op, args, false)
	if err != nil {
		return nil, err
	}
	return c.Result(context.Background())
}

func TestSessionOverFake(t *testing.T) {
	w := start(t, &fakeworker.Launcher{})
	if w.Info().Framework.Name != "fake" || w.Pid() == 0 {
		t.Fatalf("hello %+v pid %d", w.Info(), w.Pid())
	}
	raw, err := call(t, w, context.Background(), "echo", map[string]any{"x": 1})
	var got map[string]int
	if err != nil || msgpack.Unmarshal(raw, &got) != nil || got["x"] != 1 {
		t.Fatalf("echo: %v %v", got, err)
	}
	_, err = call(t, w, context.Background(), "fail", map[string]any{"category": "rate_limit", "message": "slow down"})
	if !errors.Is(err, errs.ErrRateLimit) {
		t.Fatalf("fail: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := call(t, w, ctx, "hang", nil); !errors.Is(err, errs.ErrTimeout) {
		t.Fatalf("hang: %v", err)
	}
	c, err := w.Send(context.Background(), "stream", map[string]any{"n": 3}, true)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, ok, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		n++
	}
	if n != 3 || w.InFlight() != 0 {
		t.Fatalf("stream gave %d chunks, %d in flight", n, w.InFlight())
	}
}

func TestFakeRefusesToStart(t *testing.T) {
	l := &fakeworker.Launcher{Script: func(n int) fakeworker.Behavior {
		if n == 0 {
			return fakeworker.Behavior{HelloError: "no module named torch"}
		}
		return fakeworker.Behavior{ExitBeforeHello: true, ExitCode: 3, Stderr: []string{"boom"}}
	}}
	_, err := worker.Start(context.Background(), config(l))
	var re *errs.RemoteError
	if !errors.Is(err, errs.ErrHandshake) || !errors.As(err, &re) {
		t.Fatalf("hello error: %v", err)
	}
	_, err = worker.Start(context.Background(), config(l))
	var ee *errs.ExitError
	if !errors.Is(err, errs.ErrHandshake) || !errors.As(err, &ee) || ee.ExitCode != 3 || len(ee.Stderr) != 1 {
		t.Fatalf("exit before hello: %v", err)
	}
}

func TestFakeDeathFailsPendingCalls(t *testing.T) {
	l := &fakeworker.Launcher{}
	w := start(t, l)
	c, err := w.Send(context.Background(), "hang", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	l.Workers()[0].Crash(syscall.SIGKILL)
	_, err = c.Result(context.Background())
	var ee *errs.ExitError
	if !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL.String() || !errors.Is(w.Err(), errs.ErrWorkerExited) {
		t.Fatalf("death: %v (worker: %v)", err, w.Err())
	}
}

func TestFakeWedgeIsDetectedAndKilled(t *testing.T) {
	l := &fakeworker.Launcher{}
	w := start(t, l)
	l.Workers()[0].Wedge()
	select {
	case <-w.Unresponsive():
	case <-time.After(5 * time.Second):
		t.Fatal("a wedged worker was not marked unresponsive")
	}
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a wedged worker was not killed at HeartbeatTimeout")
	}
	var ee *errs.ExitError
	if !errors.As(w.Err(), &ee) || ee.Signal != syscall.SIGKILL.String() {
		t.Fatalf("death: %v", w.Err())
	}
}

func TestFakeShutdownLetsCallsFinish(t *testing.T) {
	l := &fakeworker.Launcher{}
	w := start(t, l)
	c, err := w.Send(context.Background(), "sleep", map[string]any{"ms": 20}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if raw, err := c.Result(context.Background()); err != nil || len(raw) == 0 {
		t.Fatalf("in-flight call: %v", err)
	}
	if code, sig := l.Workers()[0].ExitStatus(); code != 0 || sig != "" {
		t.Fatalf("exit status %d %q", code, sig)
	}
	if _, err := w.Send(context.Background(), "echo", nil, false); !errors.Is(err, errs.ErrClosed) && !errors.Is(err, errs.ErrWorkerExited) {
		t.Fatalf("after shutdown: %v", err)
	}
}
