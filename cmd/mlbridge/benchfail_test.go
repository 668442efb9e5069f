package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/bench"
)

// What makes a report a failure, scenario by scenario: chaos's idempotent callers must not
// see a failure (the pool retries them), and a killed host must leave no process.
func TestBenchFailures(t *testing.T) {
	for _, c := range []struct {
		rep  bench.Report
		want string // "" when the run passed
	}{
		{bench.Report{Scenario: "noop", Calls: 100}, ""},
		{bench.Report{Scenario: "noop", Calls: 100, Errors: 3}, "3 of 100 calls failed"},
		{bench.Report{Scenario: "io-bound", Calls: 10, Errors: 10}, "10 of 10 calls failed"},
		{bench.Report{Scenario: "chaos", Calls: 1000, Kills: 40}, ""},
		{bench.Report{Scenario: "chaos", Calls: 1000, KillFailedCalls: 2}, "2 idempotent calls failed under the kill load"},
		{bench.Report{Scenario: "chaos", Calls: 1000, WedgeFailedCalls: 1}, "1 idempotent calls failed while a worker was wedged"},
		{bench.Report{Scenario: "chaos", HostDeathLeftover: 4}, "4 processes outlived their killed host"},
	} {
		err := benchFailures(&c.rep)
		if c.want == "" {
			if err != nil {
				t.Errorf("%+v: %v, want a pass", c.rep, err)
			}
			continue
		}
		if !errors.Is(err, errBenchFailed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.rep, err, c.want)
		}
	}
}
