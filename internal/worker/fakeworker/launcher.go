// Package fakeworker is the worker side of the mlbridge protocol in memory, for tests: no
// Python, no processes. Its Launcher plugs into worker.Config.Launcher; each launch serves
// the protocol over io.Pipe streams and is its own worker.Process, with scriptable faults:
// refuse to start (a hello error, or an exit before hello), die now (an exit code or a
// signal), stop answering (Wedge), or a call that never answers (op "hang").
//
// Ops: echo (returns its args), sleep {ms} (honours cancel and deadline), hang (answers only
// when cancelled), fail {category, message}, stream {n} (chunks 0..n-1), exit {code} (the
// process exits mid-call), health_check (0 abandoned threads). With Behavior.BatchEcho, echo is a
// batched op (breq/bres).
package fakeworker

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/mlbridge/mlbridge/internal/worker"
)

// Behavior scripts one launched worker.
type Behavior struct {
	// LaunchError makes the launch itself fail (the process could not be started).
	LaunchError error
	// ExitBeforeHello makes the process exit with ExitCode before it answers the hello.
	ExitBeforeHello bool
	ExitCode        int
	// SilentHello makes the worker never answer the hello (a start that hangs).
	SilentHello bool
	// HelloError makes the worker answer the hello with this error (its bridge failed to
	// load), then exit with code 1.
	HelloError string
	// Stderr is what the process wrote to stderr (the tail of its ExitError).
	Stderr []string
	// Capacity is declared in the hello's runtime (a pool's per-worker limit); 0: none.
	Capacity int
	// BatchEcho > 0 declares op echo batched with this max size (max wait 5 ms): a breq is
	// answered with each item's args, in order. BatchReply scripts a faulty answer instead:
	// "short" (one result too few) or "res_ok" (a successful res for the batch).
	BatchEcho  int
	BatchReply string
}

// Launcher launches fake workers. The zero value launches healthy ones.
type Launcher struct {
	// Script picks the behavior of launch n (0, 1, ...); nil: every worker is healthy. It may
	// be called concurrently.
	Script func(n int) Behavior

	launches atomic.Int64
	mu       sync.Mutex
	workers  []*Worker
}

var _ worker.Launcher = (*Launcher)(nil)

var nextPid atomic.Int64

func init() { nextPid.Store(4_000_000) } // beyond any real pid_max: never a real process

// Launch starts one fake worker serving the protocol.
func (l *Launcher) Launch(_ context.Context, cfg worker.Config) (*worker.Conn, error) {
	n := int(l.launches.Add(1) - 1)
	var b Behavior
	if l.Script != nil {
		b = l.Script(n)
	}
	if b.LaunchError != nil {
		return nil, b.LaunchError
	}
	toWorkerR, toWorkerW := io.Pipe()
	toHostR, toHostW := io.Pipe()
	w := &Worker{
		pid: int(nextPid.Add(1)), cfg: cfg, behavior: b,
		in: toWorkerR, out: toHostW,
		exited: make(chan struct{}), code: -1,
		calls: map[uint64]context.CancelFunc{}, ops: map[string]int{},
		frames: make(chan outFrame, 1024),
		stderr: append([]string(nil), b.Stderr...),
	}
	l.mu.Lock()
	l.workers = append(l.workers, w)
	l.mu.Unlock()
	go w.write()
	go w.serve()
	closeHost := func() {
		_ = toWorkerW.Close()
		_ = toHostR.CloseWithError(errors.New("fakeworker: host closed its end"))
	}
	return &worker.Conn{Reader: toHostR, Writer: toWorkerW, Close: closeHost, Process: w}, nil
}

// Launches is the number of launches so far, failed ones included.
func (l *Launcher) Launches() int { return int(l.launches.Load()) }

// Workers returns every worker launched so far, in launch order.
func (l *Launcher) Workers() []*Worker {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Worker(nil), l.workers...)
}

// Running returns the launched workers that have not exited.
func (l *Launcher) Running() []*Worker {
	var live []*Worker
	for _, w := range l.Workers() {
		select {
		case <-w.exited:
		default:
			live = append(live, w)
		}
	}
	return live
}
