// Quickstart: start one Python worker and call it — blocking calls, futures, a stream, a
// deadline and an error — printing each result and how long it took.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/mlbridge/mlbridge"
)

func main() {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	t0 := time.Now()
	b, err := mlbridge.Open(ctx, mlbridge.Config{Bridge: "mlbridge_worker.echo:EchoBridge", Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	info := b.Info()
	fmt.Printf("worker pid %d ready in %s: %s %s, %d handlers\n",
		info.Pid, since(t0), info.Framework, info.FrameworkVersion, len(info.Handlers))

	t := time.Now()
	sum, err := mlbridge.Decode[int](b.Call(ctx, "add", map[string]any{"a": 40, "b": 2}))
	check(err)
	fmt.Printf("add(40, 2) = %d  [%s]\n", sum, since(t))

	t = time.Now()
	echoed, err := mlbridge.Decode[map[string]any](b.Call(ctx, "echo", map[string]any{
		"value": map[string]any{"text": "héllo", "bytes": []byte{0xde, 0xad}, "list": []any{1, 2.5, nil}},
	}))
	check(err)
	fmt.Printf("echo(...) = %v  [%s]\n", echoed, since(t))

	t = time.Now()
	const n = 1000
	futures := make([]*mlbridge.Future, n)
	for i := range futures {
		futures[i] = b.Submit(ctx, "noop", nil)
	}
	for _, f := range futures {
		_, err := f.Wait(ctx)
		check(err)
	}
	el := time.Since(t)
	fmt.Printf("%d concurrent no-op calls: %s (%.0f calls/s)\n", n, el.Round(time.Microsecond), n/el.Seconds())

	t = time.Now()
	fmt.Print("stream count(5):")
	for item, err := range b.Stream(ctx, "count", map[string]any{"n": 5, "delay": 0.02}) {
		check(err)
		var v int
		check(item.Decode(&v))
		fmt.Printf(" %d", v)
	}
	fmt.Printf("  [%s]\n", since(t))

	t = time.Now()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = b.Call(short, "sleep", map[string]any{"seconds": 10})
	cancel()
	fmt.Printf("sleep(10s) with a 100ms deadline: timeout=%v  [%s]\n", errors.Is(err, mlbridge.ErrTimeout), since(t))

	t = time.Now()
	_, err = b.Call(ctx, "add", map[string]any{"a": 1})
	var re *mlbridge.RemoteError
	if errors.As(err, &re) {
		fmt.Printf("add(a=1): %s error %s: %s  [%s]\n", re.Category, re.Type, re.Message, since(t))
	}
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Microsecond) }

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
