package worker

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/shm"
)

// localLauncher starts a Python worker process on this machine (spawn.go, zygote.go).
type localLauncher struct{}

func (localLauncher) Launch(ctx context.Context, cfg Config) (*Conn, error) {
	if err := supported(); err != nil { // Windows: refused before looking for an interpreter
		return nil, err
	}
	args := cfg.Args
	if len(args) == 0 {
		if cfg.Bridge == "" {
			return nil, fmt.Errorf("%w: no bridge class (module:Class) configured", errs.ErrInvalidConfiguration)
		}
		args = workerArgs(cfg)
	}
	// The segment channel: only our own worker command line knows --shm-fd.
	var shmHost, shmChild *os.File
	var err error
	if len(cfg.Args) == 0 && sharedMemoryOn(cfg) {
		if shmHost, shmChild, err = shm.Pair(); err != nil {
			cfg.Logger.Warn("mlbridge: no shared memory for this worker; arrays travel through the pipe", "err", err)
		} else if cfg.Zygote == nil {
			args = append(args, "--shm-fd", "3") // ExtraFiles[0]
		}
	}
	cmd, err := Command(context.Background(), cfg, args...)
	if err != nil {
		closeAll(nonNil(shmHost, shmChild)...)
		return nil, err
	}
	var proc *process
	if cfg.Zygote != nil {
		proc, err = cfg.Zygote.spawn(ctx, shmChild, cfg.HandshakeTimeout)
	} else {
		if shmChild != nil {
			cmd.ExtraFiles = []*os.File{shmChild}
		}
		proc, err = spawn(cmd)
	}
	closeAll(nonNil(shmChild)...) // the worker has its copy
	if err != nil {
		closeAll(nonNil(shmHost)...)
		return nil, fmt.Errorf("mlbridge: start %s: %w", cmd.Path, err)
	}
	var channel *shm.Channel
	if shmHost != nil {
		if channel, err = shm.NewChannel(shmHost); err != nil {
			cfg.Logger.Warn("mlbridge: no shared memory for this worker; arrays travel through the pipe", "err", err)
		}
	}
	lp := &localProcess{p: proc, tail: newStderrTail(cfg.StderrLines), closed: make(chan struct{})}
	log := cfg.Logger.With("worker_pid", proc.pid())
	lp.stop = func() { Escalate(lp, cfg.ShutdownGrace+time.Second, cfg.KillDelay, log) }
	go lp.tail.run(proc.stderr, log)
	go lp.reapStragglers()
	return &Conn{Reader: proc.stdout, Writer: proc.stdin, Close: lp.close, Process: lp, Shared: channel}, nil
}

// sharedMemoryOn: this system can share segments and the config did not turn them off.
func sharedMemoryOn(cfg Config) bool { return shm.Supported && cfg.SharedMemoryMin >= 0 }

func nonNil(files ...*os.File) []*os.File {
	out := files[:0:0]
	for _, f := range files {
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}

// workerArgs is the worker command line after the interpreter.
func workerArgs(cfg Config) []string {
	args := []string{"-m", "mlbridge_worker", "--bridge", cfg.Bridge}
	if cfg.Threads > 0 {
		args = append(args, "--threads", strconv.Itoa(cfg.Threads))
	}
	if cfg.MaxFrame > 0 {
		args = append(args, "--max-frame", strconv.Itoa(cfg.MaxFrame))
	}
	if sharedMemoryOn(cfg) {
		args = append(args, "--shm-min", strconv.Itoa(cfg.sharedMemoryMin()))
	}
	if cfg.IdleSpin > 0 {
		args = append(args, "--spin-us", strconv.FormatInt(cfg.IdleSpin.Microseconds(), 10))
	}
	return args
}

// localProcess is a local worker process as a Process: our child or a zygote's.
type localProcess struct {
	p      *process
	tail   *stderrTail
	stop   func()
	closed chan struct{} // closed by close: the session is done with the pipes
	once   sync.Once
}

func (l *localProcess) Pid() int                            { return l.p.pid() }
func (l *localProcess) Program() string                     { return l.p.path }
func (l *localProcess) Exited() <-chan struct{}             { return l.p.exited }
func (l *localProcess) ExitStatus() (int, string)           { return l.p.exitStatus() }
func (l *localProcess) Signal(sig syscall.Signal)           { l.p.signalGroup(sig) }
func (l *localProcess) Stderr() ([]string, <-chan struct{}) { return l.tail.last(), l.tail.done }
func (l *localProcess) Stop()                               { l.stop() }

// close releases the host's ends of the worker's pipes.
func (l *localProcess) close() {
	l.once.Do(func() {
		close(l.closed)
		closeAll(l.p.stdin, l.p.stdout, l.p.stderr)
	})
}

// reapStragglers makes sure that when the worker process ends, nothing of its group
// outlives it and a pipe held open by a grandchild cannot keep the read loop waiting.
func (l *localProcess) reapStragglers() {
	<-l.p.exited
	l.p.signalGroup(syscall.SIGKILL)
	select {
	case <-l.closed:
	case <-time.After(time.Second):
		_ = l.p.stdout.Close()
	}
}
