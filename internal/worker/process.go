package worker

import (
	"log/slog"
	"syscall"
	"time"
)

// Process is the operating-system side of a running worker, as its launcher reports it:
// who it is, when and how it ended, how to signal it, what it last wrote to stderr, and how
// it is stopped. Nothing in it speaks the protocol; a session (session.go) does that over the
// byte streams the launcher returned beside it.
type Process interface {
	// Pid identifies the worker process (for messages, stats and RSS readings).
	Pid() int
	// Program is what was started, for messages (the interpreter's path, or "zygote").
	Program() string
	// Exited is closed once the process has exited and ExitStatus is final.
	Exited() <-chan struct{}
	// ExitStatus is the exit code, or -1 and the signal's name; (-1, "") while it runs.
	ExitStatus() (code int, signal string)
	// Signal signals the process and everything it started (its process group).
	Signal(sig syscall.Signal)
	// Stderr returns the last stderr lines, and a channel closed once stderr reached EOF
	// (after which the lines are final).
	Stderr() (lines []string, done <-chan struct{})
	// Stop is the stop policy, run once the session wrote its shutdown frame: it returns
	// when the process has exited, escalating as it sees fit (see Escalate).
	Stop()
}

// Escalate is the default stop policy, in the spirit of os/exec's Cmd.Cancel and WaitDelay:
// once the shutdown frame is written, wait termAfter for the process to exit on its own
// (the worker's grace period plus a second), then SIGTERM its group, wait killAfter, then
// SIGKILL it. It returns when the process has exited.
func Escalate(p Process, termAfter, killAfter time.Duration, log *slog.Logger) {
	steps := []struct {
		wait time.Duration
		sig  syscall.Signal
	}{
		{termAfter, syscall.SIGTERM},
		{killAfter, syscall.SIGKILL},
	}
	for _, s := range steps {
		select {
		case <-p.Exited():
			return
		case <-time.After(s.wait):
			log.Warn("mlbridge: worker did not exit in time, signalling", "signal", s.sig.String())
			p.Signal(s.sig)
		}
	}
	<-p.Exited()
}
