package mlbridge_test

import (
	"context"
	"errors"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/worker/fakeworker"
)

// Supervision tests over in-memory fake workers (internal/worker/fakeworker): no Python, no
// processes. Timeouts are small; the tests wait for outcomes, never for durations.

func fakePoolConfig(l *fakeworker.Launcher, size int) mlbridge.PoolConfig {
	cfg := mlbridge.PoolConfig{
		Config: mlbridge.Config{
			Bridge: "fake:Fake", HandshakeTimeout: 5 * time.Second,
			HeartbeatInterval: 10 * time.Millisecond, LivenessTimeout: time.Second, HeartbeatTimeout: 5 * time.Second,
			ShutdownGrace: 100 * time.Millisecond,
		},
		Size: size, HealthInterval: 50 * time.Millisecond, DrainTimeout: time.Second,
		RestartBackoff: 5 * time.Millisecond, MaxRestartBackoff: 20 * time.Millisecond,
		CrashLoopThreshold: 3, CrashLoopCooldown: 50 * time.Millisecond,
	}
	mlbridge.SetLauncher(&cfg.Config, l)
	return cfg
}

func openFake(t *testing.T, cfg mlbridge.PoolConfig) *mlbridge.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := mlbridge.OpenPool(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// eventually waits for cond, failing the test after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func echo(p *mlbridge.Pool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := p.Call(ctx, "echo", map[string]any{"x": 1})
	return err
}

// failingWhile launches workers that refuse to start (a hello error) while fail is set.
func failingWhile(fail *atomic.Bool) *fakeworker.Launcher {
	return &fakeworker.Launcher{Script: func(int) fakeworker.Behavior {
		if fail.Load() {
			return fakeworker.Behavior{HelloError: "No module named 'torch'"}
		}
		return fakeworker.Behavior{}
	}}
}

func TestFakePoolBreakerOpensAndHeals(t *testing.T) {
	var fail atomic.Bool
	l := failingWhile(&fail)
	p := openFake(t, fakePoolConfig(l, 1))
	if err := echo(p, time.Second); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	l.Workers()[0].Crash(syscall.SIGKILL)
	var err error
	eventually(t, "the breaker to open", func() bool {
		err = echo(p, time.Second)
		return errors.Is(err, mlbridge.ErrCrashLoop)
	})
	if !errors.Is(err, mlbridge.ErrHandshake) || p.Healthy() {
		t.Fatalf("open breaker: %v (healthy %v)", err, p.Healthy())
	}
	failedStarts := l.Launches() - 1
	if failedStarts < 3 {
		t.Fatalf("breaker opened after %d failed starts, threshold 3", failedStarts)
	}
	fail.Store(false)
	// The half-open try's worker closes the breaker once it held for the start grace.
	eventually(t, "the pool to heal", func() bool { return p.Stats().Error == "" && p.Healthy() })
	if err := echo(p, time.Second); err != nil {
		t.Fatalf("healed pool: %v", err)
	}
	if st := p.Stats(); st.Error != "" || st.Ready != 1 {
		t.Fatalf("healed pool: %+v", st)
	}
}

func TestFakePoolReplacesAServedWorkerAtOnce(t *testing.T) {
	l := &fakeworker.Launcher{}
	cfg := fakePoolConfig(l, 1)
	// A backoff far longer than the test: only an immediate replacement passes.
	cfg.RestartBackoff, cfg.MaxRestartBackoff = time.Hour, time.Hour
	p := openFake(t, cfg)
	if err := echo(p, time.Second); err != nil {
		t.Fatal(err)
	}
	// Past the start grace, a death says nothing about the next start.
	eventually(t, "the worker to outlive its start grace", func() bool {
		st := p.Stats()
		return len(st.Workers) == 1 && st.Workers[0].Uptime > 2100*time.Millisecond
	})
	first := l.Workers()[0]
	first.Crash(syscall.SIGKILL)
	eventually(t, "a replacement", func() bool {
		st := p.Stats()
		return p.Healthy() && len(st.Workers) == 1 && st.Workers[0].Pid != first.Pid()
	})
	if err := echo(p, time.Second); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Crashes != 1 || st.Error != "" || l.Launches() != 2 {
		t.Fatalf("after one kill: crashes %d, error %q, launches %d", st.Crashes, st.Error, l.Launches())
	}
}

func TestFakePoolFailsQueuedCallsWhenBreakerOpenAndLastWorkerDies(t *testing.T) {
	var fail atomic.Bool
	l := failingWhile(&fail)
	cfg := fakePoolConfig(l, 2)
	cfg.MaxInFlight = 1
	cfg.CrashLoopCooldown = time.Hour // no half-open try during the test
	p := openFake(t, cfg)
	fail.Store(true)
	victim, survivor := l.Workers()[0], l.Workers()[1]
	victim.Crash(syscall.SIGKILL)
	eventually(t, "the breaker to open", func() bool { return p.Stats().Error != "" })

	busy := p.Submit(context.Background(), "hang", nil)
	eventually(t, "the hanging call to reach the survivor", func() bool { return survivor.Started("hang") == 1 })
	queued := p.Submit(context.Background(), "echo", nil)
	eventually(t, "a queued call", func() bool { return p.Stats().Waiting == 1 })
	survivor.Crash(syscall.SIGKILL)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := busy.Wait(ctx); !errors.Is(err, mlbridge.ErrWorkerExited) {
		t.Fatalf("call on the dead worker: %v", err)
	}
	if _, err := queued.Wait(ctx); !errors.Is(err, mlbridge.ErrCrashLoop) {
		t.Fatalf("queued call: %v, want ErrCrashLoop", err)
	}
}

func TestFakePoolWedgedWorkerLeavesRotationAndIdempotentCallsRetry(t *testing.T) {
	l := &fakeworker.Launcher{}
	cfg := fakePoolConfig(l, 2)
	cfg.LivenessTimeout, cfg.HeartbeatTimeout = 100*time.Millisecond, 500*time.Millisecond
	cfg.DrainTimeout = 10 * time.Second // the heartbeat's kill ends the wedged worker
	p := openFake(t, cfg)

	call := p.Submit(context.Background(), "sleep", map[string]any{"ms": 200}, mlbridge.Idempotent())
	var wedged *fakeworker.Worker
	eventually(t, "the call to start", func() bool {
		for _, w := range l.Workers() {
			if w.Started("sleep") == 1 {
				wedged = w
				return true
			}
		}
		return false
	})
	wedged.Wedge()
	eventually(t, "the wedged worker to leave rotation", func() bool {
		for _, ws := range p.Stats().Workers {
			if ws.Pid == wedged.Pid() {
				return ws.State == "draining"
			}
		}
		return true
	})
	for range 20 { // none of them may land on the wedged worker
		if err := echo(p, 5*time.Second); err != nil {
			t.Fatalf("call after the wedge: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := call.Wait(ctx); err != nil {
		t.Fatalf("idempotent call on the wedged worker: %v", err)
	}
	<-wedged.Exited()
	if st := p.Stats(); st.Retries != 1 {
		t.Fatalf("retries %d, want 1", st.Retries)
	}
	eventually(t, "a full pool again", p.Healthy)
}

func TestFakePoolRecyclesAfterMaxRequests(t *testing.T) {
	l := &fakeworker.Launcher{}
	cfg := fakePoolConfig(l, 1)
	cfg.MaxRequests = 3
	p := openFake(t, cfg)
	for i := range 9 {
		if err := echo(p, 5*time.Second); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	eventually(t, "three recycles", func() bool { return p.Stats().Recycles >= 3 })
	for _, w := range l.Workers()[:3] {
		<-w.Exited()
		if code, sig := w.ExitStatus(); code != 0 || sig != "" || w.Started("echo") != 3 {
			t.Fatalf("recycled worker: exit %d %q after %d calls; want a graceful exit after 3", code, sig, w.Started("echo"))
		}
	}
}

func TestFakeOpenPoolTimesOut(t *testing.T) {
	l := &fakeworker.Launcher{Script: func(int) fakeworker.Behavior { return fakeworker.Behavior{SilentHello: true} }}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p, err := mlbridge.OpenPool(ctx, fakePoolConfig(l, 2))
	if err == nil {
		_ = p.Close()
		t.Fatal("OpenPool succeeded with workers that never answer")
	}
	if !errors.Is(err, mlbridge.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("OpenPool: %v, want ErrTimeout", err)
	}
	eventually(t, "the silent workers to be stopped", func() bool { return len(l.Running()) == 0 })
}

func TestFakeOpenPoolReportsAStartFailure(t *testing.T) {
	l := &fakeworker.Launcher{Script: func(int) fakeworker.Behavior {
		return fakeworker.Behavior{ExitBeforeHello: true, ExitCode: 3, Stderr: []string{"Segmentation fault"}}
	}}
	_, err := mlbridge.OpenPool(context.Background(), fakePoolConfig(l, 1))
	var exit *mlbridge.ExitError
	if !errors.Is(err, mlbridge.ErrHandshake) || !errors.As(err, &exit) || exit.ExitCode != 3 {
		t.Fatalf("OpenPool: %v", err)
	}
}

func TestFakePoolCloseDrains(t *testing.T) {
	l := &fakeworker.Launcher{}
	p := openFake(t, fakePoolConfig(l, 2))
	calls := make([]*mlbridge.Future, 4)
	for i := range calls {
		calls[i] = p.Submit(context.Background(), "sleep", map[string]any{"ms": 100})
	}
	eventually(t, "the calls to start", func() bool {
		n := 0
		for _, w := range l.Workers() {
			n += w.Started("sleep")
		}
		return n == len(calls)
	})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for i, f := range calls {
		if _, err := f.Wait(context.Background()); err != nil {
			t.Fatalf("call %d in flight at Close: %v", i, err)
		}
	}
	for _, w := range l.Workers() {
		if code, sig := w.ExitStatus(); code != 0 || sig != "" {
			t.Fatalf("worker stopped with %d %q, want a graceful exit", code, sig)
		}
	}
	if err := echo(p, time.Second); !errors.Is(err, mlbridge.ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
}
