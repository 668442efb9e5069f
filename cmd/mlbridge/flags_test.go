package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge/internal/testenv"
)

// Every numeric flag refuses a value out of range before anything starts, naming the flag.
func TestNumericFlagsAreValidated(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"serve", "--workers", "-3", "--addr", "127.0.0.1:0"}, "--workers"},
		{[]string{"serve", "--workers", "0", "--addr", "127.0.0.1:0"}, "--workers"},
		{[]string{"bench", "--workers", "0"}, "--workers"},
		{[]string{"bench", "--concurrency", "-1"}, "--concurrency"},
		{[]string{"bench", "--rounds", "0"}, "--rounds"},
		{[]string{"bench", "--duration", "0s"}, "--duration"},
		{[]string{"bench", "--duration", "-5s"}, "--duration"},
		{[]string{"bench", "--idle-spin", "-1us"}, "--idle-spin"},
		{[]string{"call", "add", "--timeout", "-1s"}, "--timeout"},
		{[]string{"bench", "--workers", "two"}, "--workers"},
	} {
		// A bound: on code that accepted the value, serve would run until stopped.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := newRootCmd()
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		cmd.SetArgs(append(c.args, "--python", testenv.Python(t)))
		err := cmd.ExecuteContext(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), `"`+c.flag+`"`) {
			t.Errorf("mlbridge %s: %v, want an error naming %s", strings.Join(c.args, " "), err, c.flag)
		}
	}
}
