package worker

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

// process is a started worker process and the host's ends of its pipes.
type process struct {
	cmd    *exec.Cmd
	stdin  *os.File // host writes frames here
	stdout *os.File // host reads frames here
	stderr *os.File // host reads log lines here
	exited chan struct{}
	state  *os.ProcessState // valid after exited is closed
}

// spawn starts cmd in its own process group, with Pdeathsig so the kernel kills it if the
// host dies. Pdeathsig fires when the *thread* that forked the child exits (golang/go#27505),
// so the fork happens on a goroutine locked to its OS thread, and that goroutine stays
// alive, waiting for the child, until the child is gone.
func spawn(cmd *exec.Cmd) (*process, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, err
	}
	// *os.File ends mean exec starts no copying goroutines and Wait closes nothing of ours.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	p := &process{cmd: cmd, stdin: inW, stdout: outR, stderr: errR, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread is discarded when this goroutine returns, which is
		// only after the child has been reaped.
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.exited)
	}()
	err = <-started
	closeAll(inR, outW, errW) // the child has its copies
	if err != nil {
		closeAll(inW, outR, errR)
		return nil, err
	}
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// signalGroup signals the worker's whole process group, so helpers it spawned go too.
func (p *process) signalGroup(sig syscall.Signal) {
	if err := syscall.Kill(-p.pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = p.cmd.Process.Signal(sig)
	}
}

// exitStatus describes how the process ended: exit code, or -1 and the signal's name.
func (p *process) exitStatus() (code int, signal string) {
	if p.state == nil {
		return -1, ""
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal().String()
	}
	return p.state.ExitCode(), ""
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}
