// Command mlbridge runs, calls and measures Python ML bridges from the command line.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(1)
	}
}

// errorLine is how the command reports err: once, behind one "mlbridge: ". The library's
// errors carry that prefix themselves, and wrapping one in another repeats it
// ("mlbridge: handshake failed: mlbridge: hello: ..."): every repeat is dropped.
func errorLine(err error) string {
	const prefix = "mlbridge: "
	msg := err.Error()
	for strings.HasPrefix(msg, prefix) {
		msg = strings.TrimPrefix(msg, prefix)
	}
	for strings.Contains(msg, ": "+prefix) {
		msg = strings.ReplaceAll(msg, ": "+prefix, ": ")
	}
	return prefix + msg
}
