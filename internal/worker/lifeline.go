package worker

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Nothing a worker starts outlives its host, whatever kills the host.
//
// Pdeathsig (Linux only) kills the worker when the host dies, but not what the worker
// started, and the host's own process-group kills need the host alive. So every worker
// process group — a spawned worker's, a zygote's, each zygote-forked worker's — gets a
// guardian: a small process started by the host inside that group (guardian.py, run by
// the worker's interpreter with -I -S) that reads the host's lifeline and, at EOF,
// SIGKILLs the group. It also does so when the worker exits, so it never lingers.
//
// Why the host starts it rather than the worker forking it: the host is its parent and
// reaps it (a guardian orphaned by its worker would stay a zombie under a Go host running
// as PID 1, one per worker, for good); it does not depend on the worker's code, its
// threads or a wrapper between host and interpreter; and a fresh `python -I -S` costs no
// more private memory than a fork of the worker would (≈3.6 MB each, measured: reference
// counting dirties a fork's copy-on-write pages), for ≈10 ms of CPU once per worker.

// warner is where a guardian's troubles are reported (a *slog.Logger).
type warner interface{ Warn(msg string, args ...any) }

//go:embed guardian.py
var guardianSource string

// lifeline returns the read end of a pipe shared by every guardian this process starts.
// The write end stays in this process for its whole life and nothing is ever written to
// it: Go opens descriptors close-on-exec, so no other process inherits it, and the kernel
// closes it only when this process ends — exit, panic or any signal, SIGKILL included. Its
// read end then reports EOF in every guardian. Pipes and EOF work alike on every Unix,
// macOS included. (A cgo library that forks this process without exec would hold the
// write end in its child, and delay the EOF until that child exits.)
func lifeline() (*os.File, error) {
	lifelineMu.Lock()
	defer lifelineMu.Unlock()
	if lifelineReader == nil { // made on first use; a failure (EMFILE) is retried next time
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("mlbridge: lifeline pipe: %w", err)
		}
		lifelineReader, lifelineWriter = r, w
	}
	return lifelineReader, nil
}

var (
	lifelineMu     sync.Mutex
	lifelineReader *os.File
	// lifelineWriter is never used, only kept reachable: an unreachable *os.File is closed
	// when collected, which would tell every guardian that the host is gone.
	lifelineWriter *os.File
)

// guard starts the guardian of the process group led by pid, with python (the worker's
// interpreter). It returns once the guardian is in the group; a guardian that later ends
// other than by the group's SIGKILL is logged.
func guard(python string, pid int, log warner) error {
	life, err := lifeline()
	if err != nil {
		return err
	}
	cmd := exec.Command(python, "-I", "-S", "-c", guardianSource, strconv.Itoa(pid), "3")
	cmd.ExtraFiles = []*os.File{life} // descriptor 3
	// -I ignores PYTHON* variables; the safe base set (PATH, HOME, ...) lets interpreter
	// shims (pyenv, asdf) find the real interpreter, and no host secret is passed.
	cmd.Env = buildEnv(os.Environ(), nil, nil)
	cmd.Dir = "/" // holds no directory of the host's busy
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = guardAttr(pid)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mlbridge: start the lifeline guardian of pid %d: %w", pid, err)
	}
	go func() {
		_ = cmd.Wait() // reaped here: the guardian is our child
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return // its own kill of the group, or the host's
		}
		log.Warn("mlbridge: lifeline guardian ended early; the worker's children may outlive this host",
			"worker_pid", pid, "status", cmd.ProcessState.String(), "stderr", strings.TrimSpace(stderr.String()))
	}()
	return nil
}
