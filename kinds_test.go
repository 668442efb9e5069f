package mlbridge_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge"
)

// Every handler kind × every outcome, end to end: success, an exception in the handler, a
// cancel from Go and a deadline. Cancel and deadline must reach Python (the handler records
// it), not only end the Go call. The echo bridge's kind_* ops wait until cancelled.
func TestEveryHandlerKindEveryOutcome(t *testing.T) {
	b := open(t)
	for _, kind := range []mlbridge.HandlerKind{mlbridge.KindSync, mlbridge.KindAsync, mlbridge.KindSyncGen, mlbridge.KindAsyncGen} {
		op := "kind_" + string(kind)
		if got := b.Info().Handlers[op]; got != kind {
			t.Fatalf("%s is a %s handler, want %s", op, got, kind)
		}
		streamed := kind == mlbridge.KindSyncGen || kind == mlbridge.KindAsyncGen
		// run makes the call; onStart (if any) runs once Python has started waiting.
		run := func(ctx context.Context, outcome, token string, onStart func()) (items []string, err error) {
			a := args("outcome", outcome, "token", token)
			if !streamed {
				if onStart == nil {
					res, err := b.Call(ctx, op, a)
					if err != nil {
						return nil, err
					}
					v, err := mlbridge.Decode[string](res, nil)
					return []string{v}, err
				}
				f := b.Submit(ctx, op, a)
				onStart()
				_, err := f.Wait(context.Background())
				return nil, err
			}
			for res, err := range b.Stream(ctx, op, a) {
				if err != nil {
					return items, err
				}
				v, _ := mlbridge.Decode[string](res, nil)
				items = append(items, v)
				if onStart != nil && len(items) == 1 {
					onStart()
				}
			}
			return items, nil
		}
		t.Run(string(kind)+"/success", func(t *testing.T) {
			items, err := run(context.Background(), "ok", "", nil)
			want := "[ok]"
			if streamed {
				want = "[first]"
			}
			if err != nil || fmt.Sprint(items) != want {
				t.Fatalf("got %v, %v; want %s", items, err, want)
			}
		})
		t.Run(string(kind)+"/exception", func(t *testing.T) {
			_, err := run(context.Background(), "raise", "exc-"+op, nil)
			re, ok := errors.AsType[*mlbridge.RemoteError](err)
			if !ok || re.Type != "KindOutcomeError" || !errors.Is(err, mlbridge.ErrInternal) {
				t.Fatalf("got %v; want the handler's KindOutcomeError as an internal error", err)
			}
		})
		t.Run(string(kind)+"/cancel", func(t *testing.T) {
			token := "cancel-" + op
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := run(ctx, "wait", token, func() {
				waitForToken(t, b, "started:"+token)
				cancel()
			})
			if !errors.Is(err, mlbridge.ErrCancelled) || !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want ErrCancelled", err)
			}
			waitForToken(t, b, token)
		})
		t.Run(string(kind)+"/deadline", func(t *testing.T) {
			token := "deadline-" + op
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := run(ctx, "wait", token, nil)
			if !errors.Is(err, mlbridge.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want ErrTimeout", err)
			}
			waitForToken(t, b, "started:"+token)
			waitForToken(t, b, token)
		})
	}
	// Cancelled sync work that polled RequestInfo.cancelled returned: no thread is left behind.
	type health struct {
		Abandoned int `msgpack:"abandoned"`
	}
	for call[health](t, b, "health_check", nil).Abandoned != 0 {
		time.Sleep(20 * time.Millisecond)
	}
}

// One Future, many goroutines: every waiter sees the one result, Done closes once, and a
// waiter whose own ctx ends leaves the call running for the others. Bridge and Pool futures
// complete differently (a worker call, a goroutine waiting for a worker): both are checked.
func TestFutureSharedByManyGoroutines(t *testing.T) {
	b := open(t)
	p := openPool(t)
	for name, submit := range map[string]func(context.Context, string, any) *mlbridge.Future{
		"bridge": b.Submit,
		"pool":   func(ctx context.Context, op string, a any) *mlbridge.Future { return p.Submit(ctx, op, a) },
	} {
		t.Run(name, func(t *testing.T) {
			f := submit(context.Background(), "sleep_echo", args("value", "shared", "seconds", 0.2))
			impatient, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := f.Wait(impatient); !errors.Is(err, context.Canceled) {
				t.Fatalf("a waiter whose ctx ended: %v", err)
			}
			var wg sync.WaitGroup
			results := make(chan string, 40)
			for range 40 {
				wg.Go(func() {
					<-f.Done()
					v, err := mlbridge.Decode[string](f.Wait(context.Background()))
					if err != nil {
						v = err.Error()
					}
					results <- v
				})
			}
			wg.Wait()
			close(results)
			for v := range results {
				if v != "shared" {
					t.Fatalf("a waiter got %q", v)
				}
			}
		})
	}
}
