// Package testtools holds the Go tools the agent tests give their Python agents (DSPy's ReAct,
// LangChain's tool agent): a weather lookup that fails for Atlantis with ErrNotFound, a local
// time, and a slow lookup that waits for its ctx. Each records its calls.
package testtools

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mlbridge/mlbridge"
)

// WeatherArgs are the weather tool's arguments: units is optional.
type WeatherArgs struct {
	City  string `json:"city" desc:"the city's name"`
	Units string `json:"units,omitempty" desc:"C or F"`
}

// CityIn are the other tools' arguments.
type CityIn struct {
	City string `json:"city" desc:"the city's name"`
}

// Host is the Go side of an agent's tools. SlowStarted and SlowEnded, when set, make the
// slow tool usable: it closes SlowStarted as it starts and sends its ctx's error (nil if it
// ran out its 30 s) to SlowEnded.
type Host struct {
	mu          sync.Mutex
	calls       []string
	SlowStarted chan struct{}
	SlowEnded   chan error
}

// Record notes a call, "tool:argument".
func (h *Host) Record(s string) {
	h.mu.Lock()
	h.calls = append(h.calls, s)
	h.mu.Unlock()
}

// Ran is the calls so far, comma-separated, in order.
func (h *Host) Ran() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.calls, ",")
}

// Forget drops the calls so far.
func (h *Host) Forget() {
	h.mu.Lock()
	h.calls = nil
	h.mu.Unlock()
}

// ExpectSlow forgets the calls so far and readies the slow tool for one run.
func (h *Host) ExpectSlow() {
	h.Forget()
	h.SlowStarted, h.SlowEnded = make(chan struct{}), make(chan error, 1)
}

// Tools are weather, local_time and slow.
func (h *Host) Tools() []mlbridge.HostFunc {
	return []mlbridge.HostFunc{
		mlbridge.Func("weather", func(ctx context.Context, in WeatherArgs) (map[string]any, error) {
			h.Record("weather:" + in.City)
			if in.City == "Atlantis" {
				return nil, fmt.Errorf("%w: no city named %q", mlbridge.ErrNotFound, in.City)
			}
			return map[string]any{"city": in.City, "temp_c": 21.5}, nil
		}, mlbridge.Describe("Current weather in a city")),
		mlbridge.Func("local_time", func(ctx context.Context, in CityIn) (string, error) {
			h.Record("local_time:" + in.City)
			return "12:00", nil
		}, mlbridge.Describe("Local time in a city")),
		mlbridge.Func("slow", func(ctx context.Context, in CityIn) (string, error) {
			h.Record("slow:" + in.City)
			close(h.SlowStarted)
			select {
			case <-ctx.Done():
				h.SlowEnded <- ctx.Err()
				return "", ctx.Err()
			case <-time.After(30 * time.Second):
				h.SlowEnded <- nil
				return "late", nil
			}
		}, mlbridge.Describe("A lookup that takes its time")),
	}
}
