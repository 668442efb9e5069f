package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/mlbridge/mlbridge/internal/errs"
)

// Zygote is a Python process that has imported the bridge once and forks workers on request
// (python/mlbridge_worker/zygote.py), so that N workers start in about the time of one.
// Forked workers have their own process group, die with the zygote, which dies with the host.
// The zygote's group and each forked worker's get a lifeline guardian (lifeline.go), so what
// a worker starts dies with the host too.
type Zygote struct {
	proc *process
	ctrl *net.UnixConn
	log  warner
	tail *stderrTail

	spawnMu sync.Mutex // one spawn request in flight at a time

	mu      sync.Mutex
	queue   []*process       // spawned, waiting for their pid, in request order
	running map[int]*process // by pid, until the zygote reports their exit
	err     error            // set when the control channel closed
	done    chan struct{}
}

// StartZygote starts a zygote for cfg's bridge; pass it as Config.Zygote to Start.
func StartZygote(cfg Config) (*Zygote, error) {
	if err := supported(); err != nil {
		return nil, err
	}
	if PreloadOff != "" { // macOS; a pool falls back to direct starts before getting here
		return nil, fmt.Errorf("mlbridge: no zygote on this system: %s: %w", PreloadOff, errors.ErrUnsupported)
	}
	cfg = cfg.withDefaults()
	cmd, err := Command(context.Background(), cfg, append(workerArgs(cfg), "--zygote-fd", "3")...)
	if err != nil {
		return nil, err
	}
	ours, theirs, err := controlPair()
	if err != nil {
		return nil, err
	}
	defer theirs.Close()
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{theirs}
	proc, err := spawn(cmd)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("mlbridge: start zygote: %w", err)
	}
	log := cfg.Logger.With("zygote_pid", proc.pid()) // the caller's logger names the bridge
	tail := newStderrTail(cfg.StderrLines)
	go tail.run(proc.stderr, log)
	closeAll(proc.stdin) // the zygote reads nothing on stdin
	z := &Zygote{proc: proc, ctrl: conn.(*net.UnixConn), log: log, tail: tail, running: map[int]*process{}, done: make(chan struct{})}
	go z.readLoop()
	return z, nil
}

// Pid is the zygote's process id.
func (z *Zygote) Pid() int { return z.proc.pid() }

// Done is closed when the zygote is gone (its workers die with it).
func (z *Zygote) Done() <-chan struct{} { return z.done }

// spawn asks the zygote for a new worker whose stdio are fresh pipes; shared, if not nil, is
// the worker's end of its segment channel (it becomes the worker's fd 3). It waits for the
// fork as a direct start waits for the hello: until ctx ends or for at most limit (the
// handshake timeout). A zygote whose import of the bridge hangs forks nothing, and the start
// fails like the start of a worker that hangs at import. A request given up is still
// answered by the zygote, in order; its worker reads EOF instead of a hello and exits.
func (z *Zygote) spawn(ctx context.Context, shared *os.File, limit time.Duration) (*process, error) {
	child, host, err := pipes()
	if err != nil {
		return nil, err
	}
	defer closeAll(child[:]...) // the zygote received its own copies
	p := &process{path: "zygote", stdin: host[0], stdout: host[1], stderr: host[2], exited: make(chan struct{})}
	ready := make(chan struct{})

	z.spawnMu.Lock()
	defer z.spawnMu.Unlock()
	z.mu.Lock()
	if z.err != nil {
		z.mu.Unlock()
		closeAll(host[:]...)
		return nil, z.err
	}
	z.queue = append(z.queue, p)
	z.mu.Unlock()
	p.ready = ready
	oob := fdRights(append(child[:], nonNil(shared)...)...)
	if _, _, err := z.ctrl.WriteMsgUnix([]byte("spawn"), oob, nil); err != nil {
		closeAll(host[:]...)
		return nil, z.spawnFailed(err)
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-ready:
		// The zygote put the child in its own group before naming it: guard that group.
		if err := guard(z.proc.path, p.id, z.log); err != nil {
			p.signalGroup(syscall.SIGKILL)
			closeAll(host[:]...)
			return nil, err
		}
		return p, nil
	case <-z.done:
		closeAll(host[:]...)
		return nil, z.err
	case <-ctx.Done():
		closeAll(host[:]...)
		return nil, fmt.Errorf("%w: %w", errs.ErrHandshake, CtxError("waiting for the zygote to fork a worker", ctx.Err()))
	case <-timer.C:
		closeAll(host[:]...)
		return nil, fmt.Errorf("%w: the zygote did not fork a worker within %s (still importing the bridge?)", errs.ErrHandshake, limit)
	}
}

type zygoteMsg struct {
	Spawned int    `json:"spawned"`
	Exited  int    `json:"exited"`
	Code    *int   `json:"code"`
	Signal  *int   `json:"signal"`
	Error   string `json:"error"`
}

func (z *Zygote) readLoop() {
	buf := make([]byte, 4096)
	for {
		n, _, _, _, err := z.ctrl.ReadMsgUnix(buf, nil)
		if err != nil || n == 0 {
			z.fail()
			return
		}
		var m zygoteMsg
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			z.log.Warn("mlbridge: bad message from zygote", "err", err)
			continue
		}
		z.mu.Lock()
		switch {
		case m.Spawned > 0 && len(z.queue) > 0:
			p := z.queue[0]
			z.queue = z.queue[1:]
			p.id = m.Spawned
			z.running[p.id] = p
			close(p.ready)
		case m.Exited > 0:
			if p := z.running[m.Exited]; p != nil {
				delete(z.running, m.Exited)
				if m.Signal != nil {
					p.exit(-1, syscall.Signal(*m.Signal).String())
				} else if m.Code != nil {
					p.exit(*m.Code, "")
				}
			}
		case m.Error != "":
			z.log.Warn("mlbridge: zygote refused a spawn", "err", m.Error)
		}
		z.mu.Unlock()
	}
}

// spawnFailed explains a spawn request the zygote could not take: once it is gone, why.
func (z *Zygote) spawnFailed(err error) error {
	select {
	case <-z.done:
		return z.err
	case <-time.After(time.Second):
		return fmt.Errorf("mlbridge: zygote spawn: %w", err)
	}
}

// fail runs when the control channel closes: the zygote is gone, and with it its workers.
func (z *Zygote) fail() {
	<-z.proc.exited
	select { // the rest of its stderr, briefly: why it ended is usually its last line
	case <-z.tail.done:
	case <-time.After(time.Second):
	}
	closeAll(z.proc.stdout, z.proc.stderr) // nothing else closes the host's ends
	code, sig := z.proc.exitStatus()
	// Every spawn from now on fails as the start of a worker that could not start would: an
	// interpreter that ended at once, a preload that killed the zygote.
	err := fmt.Errorf("%w: %w", errs.ErrHandshake, &errs.ExitError{
		Pid: z.proc.pid(), ExitCode: code, Signal: sig, Reason: "the zygote exited", Stderr: z.tail.last(),
	})
	z.mu.Lock()
	z.err = err
	running := z.running
	z.running = map[int]*process{}
	z.mu.Unlock()
	for _, p := range running {
		p.exit(-1, "killed") // PDEATHSIG
	}
	close(z.done)
}

// Close stops the zygote; the workers it forked die with it.
func (z *Zygote) Close() error {
	_ = z.ctrl.Close()
	select {
	case <-z.done:
	case <-time.After(2 * time.Second):
		z.proc.signalGroup(syscall.SIGKILL)
		<-z.done
	}
	return nil
}
