package worker

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// process is a started worker process and the host's ends of its pipes. It is either our
// child (spawn) or a zygote's (Zygote.spawn); exit status arrives accordingly.
type process struct {
	path   string // the interpreter, for messages
	id     int
	stdin  *os.File // host writes frames here
	stdout *os.File // host reads frames here
	stderr *os.File // host reads log lines here
	exited chan struct{}
	ready  chan struct{} // zygote children: closed once the pid is known
	// valid after exited is closed: exit code, or -1 and the signal's name
	code   int
	signal string
}

func (p *process) exit(code int, signal string) {
	p.code, p.signal = code, signal
	close(p.exited)
}

// spawn starts cmd in its own process group. On Linux the kernel also kills it if the host
// dies (Pdeathsig, spawn_linux.go): Pdeathsig fires when the *thread* that forked the child
// exits (golang/go#27505), so the fork happens on a goroutine locked to its OS thread, and
// that goroutine stays alive, waiting for the child, until the child is gone. Pdeathsig
// reaches the worker only (and exists only on Linux): the group's lifeline guardian
// (lifeline.go) is what takes everything in it down with the host, on macOS too. cmd.Path
// must be a Python interpreter, which also runs the guardian; its warnings go to slog's
// default logger. On Windows it refuses (supported_windows.go).
func spawn(cmd *exec.Cmd) (*process, error) {
	if err := supported(); err != nil {
		return nil, err
	}
	child, host, err := pipes()
	if err != nil {
		return nil, err
	}
	// *os.File ends mean exec starts no copying goroutines and Wait closes nothing of ours.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = child[0], child[1], child[2]
	cmd.SysProcAttr = spawnAttr()

	p := &process{path: cmd.Path, stdin: host[0], stdout: host[1], stderr: host[2], exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		if lockSpawnThread {
			runtime.LockOSThread()
			// Never unlocked: the thread is discarded when this goroutine returns, which is
			// only after the child has been reaped.
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.id = cmd.Process.Pid
		started <- nil
		_ = cmd.Wait()
		p.exit(statusOf(cmd.ProcessState))
	}()
	err = <-started
	closeAll(child[:]...) // the child has its copies
	if err == nil {
		if err = guard(cmd.Path, p.id, slog.Default()); err != nil {
			p.signalGroup(syscall.SIGKILL) // unguarded, it must not run
			if groupGone(err) && p.waitExited(time.Second) {
				// It ended at once (a wrapper or shim that failed, an interpreter that cannot
				// start): nothing is left to guard, and the handshake reports its exit status
				// and stderr, which say why, instead of the guardian's EPERM.
				err = nil
			}
		}
	}
	if err != nil {
		closeAll(host[:]...)
		return nil, err
	}
	return p, nil
}

func (p *process) pid() int { return p.id }

// groupGone: the guardian could not join the worker's process group because no process is
// left in it (the worker already exited and was reaped).
func groupGone(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ESRCH)
}

// waitExited reports whether the process has exited, waiting up to limit.
func (p *process) waitExited(limit time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(limit):
		return false
	}
}

// exitStatus describes how the process ended: exit code, or -1 and the signal's name.
func (p *process) exitStatus() (code int, signal string) {
	select {
	case <-p.exited:
		return p.code, p.signal
	default:
		return -1, ""
	}
}

func statusOf(st *os.ProcessState) (int, string) {
	if st == nil {
		return -1, ""
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal().String()
	}
	return st.ExitCode(), ""
}

// pipes makes the three pipes of a worker: the child's ends, then the host's.
func pipes() (child, host [3]*os.File, err error) {
	for i := range 3 {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(child[:i]...)
			closeAll(host[:i]...)
			return child, host, err
		}
		if i == 0 { // stdin: the child reads
			child[i], host[i] = r, w
		} else {
			child[i], host[i] = w, r
		}
	}
	return child, host, nil
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}
