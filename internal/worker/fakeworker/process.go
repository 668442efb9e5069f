package fakeworker

import (
	"syscall"
	"time"

	"github.com/mlbridge/mlbridge/internal/worker"
)

// The worker.Process side of a fake worker: its "process" is the serve goroutine, and it
// exits when told to, when signalled, or at the end of a graceful shutdown.

var _ worker.Process = (*Worker)(nil)

// Pid is the fake's process id (never a real process).
func (w *Worker) Pid() int { return w.pid }

// Program names the fake in messages.
func (w *Worker) Program() string { return "fakeworker" }

// Exited is closed once the fake exited.
func (w *Worker) Exited() <-chan struct{} { return w.exited }

// ExitStatus is the exit code, or -1 and the signal's name; (-1, "") while it runs.
func (w *Worker) ExitStatus() (int, string) {
	select {
	case <-w.exited:
		return w.code, w.signal
	default:
		return -1, ""
	}
}

// Signal: SIGKILL and SIGTERM end the fake (a wedged one too); others are ignored.
func (w *Worker) Signal(sig syscall.Signal) {
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		w.exit(-1, sig.String())
	}
}

// Stderr is the scripted stderr; it is complete once the fake exited.
func (w *Worker) Stderr() ([]string, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.stderr...), w.exited
}

// Stop is the local launcher's policy: the grace period plus a second, SIGTERM, KillDelay,
// SIGKILL.
func (w *Worker) Stop() {
	worker.Escalate(w, w.cfg.ShutdownGrace+time.Second, w.cfg.KillDelay, w.cfg.Logger)
}

// Exit makes the fake exit now with code, failing whatever it had in flight.
func (w *Worker) Exit(code int) { w.exit(code, "") }

// Crash makes the fake die now of sig (as if killed from outside).
func (w *Worker) Crash(sig syscall.Signal) { w.exit(-1, sig.String()) }

// Wedge makes the fake stop writing anything — no pong, no answer — like a worker whose
// event loop is stuck in a C call. It still reads, and dies when signalled.
func (w *Worker) Wedge() { w.wedged.Store(true) }

// exit ends the fake once: status first, then its streams (the host reads EOF, its writes
// fail), as a dying process's pipes close after the kernel has its status.
func (w *Worker) exit(code int, signal string) {
	w.exitOnce.Do(func() {
		w.code, w.signal = code, signal
		close(w.exited)
		_ = w.out.Close()
		_ = w.in.Close()
		w.mu.Lock()
		for _, cancel := range w.calls {
			cancel()
		}
		w.mu.Unlock()
	})
}
