package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mlbridge/mlbridge/internal/errs"
)

// Worker is one running worker: a protocol session (session.go, call.go) over the streams of
// a process its launcher started (Process). It is safe for concurrent use.
type Worker struct {
	*session
	proc       Process
	killReason atomic.Pointer[string]
	started    time.Time
}

// Start launches a worker (Config.Launcher; nil: a local Python process) and returns once
// its handshake completed. ctx bounds the start only, not the worker's life.
func Start(ctx context.Context, cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	launcher := cfg.Launcher
	if launcher == nil {
		launcher = LocalLauncher
	}
	conn, err := launcher.Launch(ctx, cfg)
	if err != nil {
		return nil, err
	}
	w := &Worker{proc: conn.Process, started: time.Now()}
	// The caller's logger names the bridge (a pool or registry adds bridge=<name>); the
	// worker adds only what it alone knows, so no attribute appears twice.
	log := cfg.Logger.With("worker_pid", conn.Process.Pid())
	w.session = newSession(cfg, log, conn.Reader, conn.Writer, conn.Close, w)
	w.shmConn = conn.Shared // closed when the session dies, handshake or not
	if err := w.handshake(ctx); err != nil {
		w.startFailed = true // the error is returned: die does not log it too
		w.kill("handshake failed")
		w.die("handshake failed")
		return nil, err
	}
	w.adoptShared(conn.Shared)
	w.run()
	return w, nil
}

// Pid is the worker's process id.
func (w *Worker) Pid() int { return w.proc.Pid() }

// StartedAt is when the process was launched.
func (w *Worker) StartedAt() time.Time { return w.started }

// Kill stops the worker at once (used by supervisors and tests).
func (w *Worker) Kill(reason string) { w.kill(reason) }

// kill stops the process group at once; the read loop then sees EOF and fails every
// pending call with an ExitError carrying reason.
func (w *Worker) kill(reason string) {
	w.killReason.CompareAndSwap(nil, &reason)
	w.proc.Signal(syscall.SIGKILL)
}

func (w *Worker) stop() { w.proc.Stop() }

// ended waits for the process to be gone once its output closed (killing it if it lingers
// past KillDelay) and for the rest of its stderr, then says how it ended.
func (w *Worker) ended(symptom string) *errs.ExitError {
	select {
	case <-w.proc.Exited():
	case <-time.After(w.cfg.KillDelay):
		w.kill("stdout closed but the process did not exit")
		select {
		case <-w.proc.Exited():
		case <-time.After(w.cfg.KillDelay):
			// Killed, but nobody reports its exit: a worker forked by a zygote that is
			// stopped (SIGSTOP) reaps nothing. Its calls must not wait for that.
		}
	}
	w.stderrDone(time.Second)
	return w.exitError(symptom)
}

func (w *Worker) stderrDone(limit time.Duration) {
	_, done := w.proc.Stderr()
	select {
	case <-done:
	case <-time.After(limit):
	}
}

func (w *Worker) exitError(symptom string) *errs.ExitError {
	code, sig := w.proc.ExitStatus()
	reason := symptom
	if r := w.killReason.Load(); r != nil {
		reason = *r
	}
	lines, _ := w.proc.Stderr()
	return &errs.ExitError{Pid: w.proc.Pid(), ExitCode: code, Signal: sig, Reason: reason, Stderr: lines}
}

// startError explains a failed start. If the process already exited, its exit status and
// stderr say more than the symptom; a missing runtime dependency gets its own sentinel
// and the command that installs it.
func (w *Worker) startError(what string, cause error) error {
	select {
	case <-w.proc.Exited():
	case <-time.After(200 * time.Millisecond):
	}
	select {
	case <-w.proc.Exited():
		w.stderrDone(time.Second)
		exit := w.exitError(what)
		if err := missingPackage(w.proc.Program(), exit.Stderr, exit); err != nil {
			return err
		}
		return fmt.Errorf("%w: %w", errs.ErrHandshake, exit)
	default:
	}
	tail := ""
	if lines, _ := w.proc.Stderr(); len(lines) > 0 {
		tail = "; last stderr: " + strings.Join(lines, " | ")
	} else {
		tail = "; nothing on stderr"
	}
	if errors.Is(cause, context.DeadlineExceeded) || errors.Is(cause, context.Canceled) {
		// A start cut short by its ctx: ErrTimeout/ErrCancelled and the ctx error both match.
		return fmt.Errorf("%w: %w%s", errs.ErrHandshake, CtxError(what, cause), tail)
	}
	if cause != nil {
		return fmt.Errorf("%w: %s: %w%s", errs.ErrHandshake, what, cause, tail)
	}
	return fmt.Errorf("%w: %s%s", errs.ErrHandshake, what, tail)
}
