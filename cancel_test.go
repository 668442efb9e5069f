package mlbridge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
)

func TestDeadlineReachesPythonAsync(t *testing.T) {
	b := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := b.Call(ctx, "sleep", args("seconds", 60, "token", "deadline-async"))
	if !errors.Is(err, mlbridge.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrTimeout and DeadlineExceeded", err)
	}
	// The asyncio task was really cancelled in Python, not just forgotten in Go.
	waitForToken(t, b, "deadline-async")
}

func TestCancelReachesPythonAsync(t *testing.T) {
	b := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	f := b.Submit(ctx, "sleep", args("seconds", 60, "token", "cancel-async"))
	cancel()
	_, err := f.Wait(context.Background())
	if !errors.Is(err, mlbridge.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	waitForToken(t, b, "cancel-async")
}

func TestFutureCancel(t *testing.T) {
	b := open(t)
	f := b.Submit(context.Background(), "sleep", args("seconds", 60, "token", "future-cancel"))
	f.Cancel()
	<-f.Done()
	if _, err := f.Wait(context.Background()); !errors.Is(err, mlbridge.ErrCancelled) {
		t.Fatalf("got %v", err)
	}
	waitForToken(t, b, "future-cancel")
}

func TestWaitCtxDoesNotCancelTheCall(t *testing.T) {
	b := open(t)
	f := b.Submit(context.Background(), "sleep", args("seconds", 0.3))
	short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := f.Wait(short); !errors.Is(err, mlbridge.ErrTimeout) {
		t.Fatalf("short wait: %v", err)
	}
	if _, err := f.Wait(context.Background()); err != nil {
		t.Fatalf("the call itself should still succeed: %v", err)
	}
}

func TestHungSyncHandlerIsAbandonedAtDeadline(t *testing.T) {
	b := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	f := b.Submit(ctx, "hang", args("token", "abandon"))
	// A call cancelled before its thread starts is simply never run; this test is about one
	// that is running, so wait until it is.
	waitForToken(t, b, "started:abandon")
	_, err := f.Wait(context.Background())
	if !errors.Is(err, mlbridge.ErrTimeout) {
		t.Fatalf("got %v", err)
	}
	// The worker still serves, and reports the abandoned thread (the pool recycles on it).
	type stats struct {
		Process struct {
			Abandoned int `msgpack:"abandoned"`
		} `msgpack:"process"`
	}
	if s := call[stats](t, b, "get_stats", nil); s.Process.Abandoned != 1 {
		t.Fatalf("abandoned = %d, want 1 (call error: %v)", s.Process.Abandoned, err)
	}
}

func TestPythonEnforcesDeadlineOnItsOwn(t *testing.T) {
	// The deadline travels in the request: Python answers "timeout" even if the Go side's
	// timer were late. Here both race; either way it is a timeout.
	b := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := b.Call(ctx, "sync_sleep", args("seconds", 5))
	if !errors.Is(err, mlbridge.ErrTimeout) {
		t.Fatalf("got %v", err)
	}
}

func TestStream(t *testing.T) {
	b := open(t)
	for _, op := range []string{"count", "sync_count"} {
		var got []int
		for item, err := range b.Stream(context.Background(), op, args("n", 5)) {
			if err != nil {
				t.Fatalf("%s: %v", op, err)
			}
			var v int
			if err := item.Decode(&v); err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		if len(got) != 5 || got[0] != 0 || got[4] != 4 {
			t.Fatalf("%s streamed %v", op, got)
		}
	}
}

func TestStreamOfNonGeneratorIsAnError(t *testing.T) {
	b := open(t)
	for _, err := range b.Stream(context.Background(), "echo", args("value", 1)) {
		if !errors.Is(err, mlbridge.ErrInvalidArgument) {
			t.Fatalf("got %v", err)
		}
		return
	}
	t.Fatal("stream yielded nothing")
}

func TestStreamBreakStopsGenerator(t *testing.T) {
	b := open(t)
	n := 0
	for _, err := range b.Stream(context.Background(), "count", args("n", 1000, "delay", 0.01, "token", "break-stream")) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	waitForToken(t, b, "break-stream")
}

func TestStreamCtxCancelMidStream(t *testing.T) {
	b := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	var last error
	for _, err := range b.Stream(ctx, "count", args("n", 1000, "delay", 0.01, "token", "cancel-stream")) {
		if err != nil {
			last = err
			break
		}
		if n++; n == 3 {
			cancel()
		}
	}
	if !errors.Is(last, mlbridge.ErrCancelled) {
		t.Fatalf("stream ended with %v after %d items", last, n)
	}
	waitForToken(t, b, "cancel-stream")
}

func TestStreamErrorMidway(t *testing.T) {
	b := open(t)
	var items int
	var last error
	for _, err := range b.Stream(context.Background(), "count", args("n", 5, "fail_at", 2)) {
		if err != nil {
			last = err
			break
		}
		items++
	}
	if items != 2 || !errors.Is(last, mlbridge.ErrInternal) {
		t.Fatalf("got %d items then %v", items, last)
	}
}
