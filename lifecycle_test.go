package mlbridge_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

func TestWorkerKilledMidCall(t *testing.T) {
	b := open(t)
	pid := b.Info().Pid
	ctx := context.Background()
	futures := []*mlbridge.Future{
		b.Submit(ctx, "sleep", args("seconds", 60)),
		b.Submit(ctx, "sync_sleep", args("seconds", 60)),
	}
	stream := b.Stream(ctx, "count", args("n", 100000, "delay", 0.01))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, f := range futures {
		_, err := f.Wait(ctx)
		var exit *mlbridge.ExitError
		if !errors.Is(err, mlbridge.ErrWorkerExited) || !errors.As(err, &exit) {
			t.Fatalf("pending call: %v", err)
		}
		if exit.Signal != "killed" || exit.Pid != pid {
			t.Fatalf("exit error %+v", exit)
		}
	}
	var streamErr error
	for _, err := range stream {
		if err != nil {
			streamErr = err
		}
	}
	if !errors.Is(streamErr, mlbridge.ErrWorkerExited) {
		t.Fatalf("stream: %v", streamErr)
	}
	<-b.Done()
	// New calls fail at once with the same cause.
	if _, err := b.Call(ctx, "noop", nil); !errors.Is(err, mlbridge.ErrWorkerExited) {
		t.Fatalf("call after death: %v", err)
	}
}

func TestWorkerCrashCarriesExitCodeAndStderr(t *testing.T) {
	b := open(t)
	_, err := b.Call(context.Background(), "exit", args("code", 7, "message", "fatal: disk on fire"))
	var exit *mlbridge.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("got %v", err)
	}
	if exit.ExitCode != 7 || !strings.Contains(strings.Join(exit.Stderr, "\n"), "disk on fire") {
		t.Fatalf("exit error %+v", exit)
	}
}

func TestHeartbeatKillsAFrozenWorker(t *testing.T) {
	b := open(t, func(c *mlbridge.Config) {
		c.HeartbeatInterval = 50 * time.Millisecond
		c.HeartbeatTimeout = 300 * time.Millisecond
	})
	f := b.Submit(context.Background(), "sleep", args("seconds", 0.01))
	if _, err := f.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A stopped process answers nothing, like a wedged event loop.
	if err := syscall.Kill(b.Info().Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	_, err := b.Call(context.Background(), "noop", nil)
	var exit *mlbridge.ExitError
	if !errors.As(err, &exit) || !strings.Contains(exit.Reason, "heartbeat") {
		t.Fatalf("got %v", err)
	}
}

func TestShutdownDrainsInFlightCalls(t *testing.T) {
	b := open(t)
	f := b.Submit(context.Background(), "sleep", args("seconds", 0.3))
	time.Sleep(50 * time.Millisecond) // let the request reach the worker before Close
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Wait(context.Background()); err != nil {
		t.Fatalf("in-flight call during Close: %v", err)
	}
	if _, err := b.Call(context.Background(), "noop", nil); !errors.Is(err, mlbridge.ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
	if processAlive(b.Info().Pid) {
		t.Fatal("worker still running after Close")
	}
}

func TestShutdownEscalatesPastHungHandler(t *testing.T) {
	b := open(t, func(c *mlbridge.Config) { c.ShutdownGrace = 100 * time.Millisecond })
	f := b.Submit(context.Background(), "hang", nil)
	time.Sleep(50 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Wait(context.Background()); err == nil {
		t.Fatal("a hung call cannot succeed")
	}
	if processAlive(b.Info().Pid) {
		t.Fatal("worker still running after Close")
	}
}

func TestHandshakeFailures(t *testing.T) {
	python := testenv.Python(t)
	ctx := context.Background()
	t.Run("bad bridge class", func(t *testing.T) {
		_, err := mlbridge.Open(ctx, mlbridge.Config{Bridge: "no_such_module:Nope", Python: python, Logger: quietLogger(t)})
		if !errors.Is(err, mlbridge.ErrHandshake) || !errors.Is(err, mlbridge.ErrInvalidConfiguration) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("interpreter not found", func(t *testing.T) {
		_, err := mlbridge.Open(ctx, mlbridge.Config{Bridge: testenv.EchoBridge, Python: "/nonexistent/python3"})
		if !errors.Is(err, mlbridge.ErrPythonNotFound) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("msgpack missing", func(t *testing.T) {
		// The runtime ships with the Go module; what a bare interpreter lacks is msgpack,
		// and the error says how to install it there.
		bare := bareVenvPython(t)
		_, err := mlbridge.Open(ctx, mlbridge.Config{Bridge: testenv.EchoBridge, Python: bare, Logger: quietLogger(t)})
		if !errors.Is(err, mlbridge.ErrWorkerPackageMissing) || !strings.Contains(err.Error(), "lacks msgpack: run `"+bare+" -m pip install msgpack`") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no hello in time", func(t *testing.T) {
		start := time.Now()
		_, err := mlbridge.Open(ctx, mlbridge.Config{
			Python: python, Args: []string{"-c", "import time; time.sleep(60)"},
			HandshakeTimeout: 300 * time.Millisecond, Logger: quietLogger(t),
		})
		if !errors.Is(err, mlbridge.ErrHandshake) {
			t.Fatalf("got %v", err)
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("handshake timeout not honoured")
		}
	})
	t.Run("garbage instead of hello", func(t *testing.T) {
		_, err := mlbridge.Open(ctx, mlbridge.Config{
			Python: python, Args: []string{"-c", "import sys, time; sys.stdout.write('hello world, not a frame'); sys.stdout.flush(); time.sleep(60)"},
			Logger: quietLogger(t),
		})
		if !errors.Is(err, mlbridge.ErrHandshake) {
			t.Fatalf("got %v", err)
		}
	})
}

// bareVenvPython makes a venv without any package: no mlbridge_worker (the embedded runtime
// stands in) and no msgpack.
func bareVenvPython(t *testing.T) string {
	dir := t.TempDir()
	out, err := exec.Command(testenv.Python(t), "-m", "venv", "--without-pip", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("venv: %v %s", err, out)
	}
	return filepath.Join(dir, "bin", "python")
}

// TestHostKilledLeavesNoWorker re-runs this test binary as a host that opens a bridge (or a
// pool of 4), prints its workers' pids, and waits; then SIGKILLs that host. Pdeathsig, stdin
// EOF and the worker's parent watch must each be enough; together every worker must be gone
// within 2 s.
func TestHostKilledLeavesNoWorker(t *testing.T) {
	if kind := os.Getenv("MLBRIDGE_TEST_HOST"); kind != "" {
		runHelperHost(kind)
		return
	}
	for _, kind := range []string{"bridge", "pool", "preload"} {
		t.Run(kind, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHostKilledLeavesNoWorker$")
			cmd.Env = append(os.Environ(), "MLBRIDGE_TEST_HOST="+kind, "MLBRIDGE_PYTHON="+testenv.Python(t))
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = testWriter{t}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil {
				t.Fatalf("helper host: %v", err)
			}
			var workers []int
			for _, f := range strings.Fields(strings.TrimPrefix(line, "worker pids ")) {
				pid, err := strconv.Atoi(f)
				if err != nil || !processAlive(pid) {
					t.Fatalf("helper said %q", line)
				}
				workers = append(workers, pid)
			}
			if want := map[string]int{"bridge": 1, "pool": 4, "preload": 4}[kind]; len(workers) != want {
				t.Fatalf("helper started %d workers, want %d", len(workers), want)
			}
			if kind == "preload" { // the zygote must go too
				workers = append(workers, parentOf(t, workers[0]))
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			deadline := time.Now().Add(2 * time.Second)
			for _, pid := range workers {
				for processAlive(pid) {
					if time.Now().After(deadline) {
						t.Fatalf("worker %d still alive 2 s after its host was SIGKILLed", pid)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
}

func runHelperHost(kind string) {
	ctx := context.Background()
	var pids []string
	if kind != "bridge" {
		p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
			Config: mlbridge.Config{Bridge: testenv.EchoBridge}, Size: 4, Preload: kind == "preload",
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, w := range p.Stats().Workers {
			pids = append(pids, strconv.Itoa(w.Pid))
		}
	} else {
		b, err := mlbridge.Open(ctx, mlbridge.Config{Bridge: testenv.EchoBridge})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pids = append(pids, strconv.Itoa(b.Info().Pid))
	}
	fmt.Printf("worker pids %s\n", strings.Join(pids, " "))
	time.Sleep(time.Minute)
	os.Exit(0)
}

// processAlive reports whether pid runs; a zombie waiting to be reaped counts as gone.
func processAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// TestWorkerInterruptedMidCallIsAnExit: SIGINT to a worker (an operator's `kill -INT`) ends it
// like SIGTERM or SIGHUP do. Its calls fail with ErrWorkerExited, so an idempotent one is
// placed again; they used to come back as ErrCancelled — asyncio.Runner turned the signal
// into a cancellation of every task — a cancellation nobody asked for, never retried.
func TestWorkerInterruptedMidCallIsAnExit(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	futures := []*mlbridge.Future{
		b.Submit(ctx, "kind_async", args("outcome", "wait", "token", "int-async")),
		b.Submit(ctx, "kind_sync", args("outcome", "wait", "token", "int-sync")),
	}
	waitForToken(t, b, "started:int-async")
	waitForToken(t, b, "started:int-sync")
	if err := syscall.Kill(b.Info().Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for _, f := range futures {
		_, err := f.Wait(ctx)
		var exit *mlbridge.ExitError
		if errors.Is(err, mlbridge.ErrCancelled) || !errors.Is(err, mlbridge.ErrWorkerExited) || !errors.As(err, &exit) {
			t.Fatalf("call in flight at SIGINT: %v", err)
		}
		if exit.Signal != "interrupt" {
			t.Fatalf("exit error %+v", exit)
		}
	}
}

// TestForkInAHandlerLeavesTheProtocolToTheWorker: a handler that calls os.fork() in the event
// loop's thread and returns in both processes. The copy must not answer for the worker or read
// its requests: its answer used to reach the caller first (the copy's pid, child 0), and it
// kept serving from the same pipes. Now the copy is cut off from the protocol at the fork
// (ends of input and output point at /dev/null), sees EOF and exits.
func TestForkInAHandlerLeavesTheProtocolToTheWorker(t *testing.T) {
	b := open(t)
	pid := b.Info().Pid
	// async: the fork on the event loop's thread; sync: on a thread of the pool, whose copy
	// would otherwise wait on the executor's queue for ever
	for _, op := range []string{"fork_and_return", "sync_fork_and_return", "sync_fork_and_return"} {
		got := call[map[string]int](t, b, op, nil)
		if got["pid"] != pid || got["child"] == 0 {
			t.Fatalf("%s: answered by %v, the worker is %d", op, got, pid)
		}
		if !processGone(got["child"]) {
			t.Fatalf("%s: the forked copy %d still runs", op, got["child"])
		}
	}
	for i := range 50 {
		if v := call[int](t, b, "echo", args("value", i)); v != i {
			t.Fatalf("echo %d: %d", i, v)
		}
	}
	select {
	case <-b.Done():
		t.Fatal("the worker died")
	default:
	}
}
