package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/wire"
)

// Hello is what a worker announced in its handshake.
type Hello struct {
	Version      uint64
	Pid          int
	Framework    wire.Framework
	Capabilities []string
	Handlers     map[string]string // op -> kind: sync, async, sync_gen, async_gen
	MaxFrame     uint64
	Runtime      msgpack.RawMessage
}

// Worker is one running Python worker process. It is safe for concurrent use.
type Worker struct {
	cfg   Config
	log   *slog.Logger
	proc  *process
	hello Hello
	fr    *wire.FrameReader
	// maxFrame bounds frames both ways; larger requests are refused before sending.
	maxFrame int

	// Writes: senders append under wmu; the last one waiting flushes, so concurrent
	// senders share one write syscall without a dedicated writer goroutine.
	wmu     sync.Mutex
	bw      *bufio.Writer
	writers atomic.Int32

	mu       sync.Mutex
	pending  map[uint64]*Call
	closing  bool
	deathErr error

	nextID atomic.Uint64
	frames atomic.Uint64 // frames received: the heartbeat's liveness signal
	// busyUntil (unix ns): no liveness verdict before it (a large request is being decoded)
	busyUntil        atomic.Int64
	unresponsive     chan struct{}
	unresponsiveOnce sync.Once
	inFlight         atomic.Int64

	stderr      *stderrTail
	startFailed bool // set before die when Start returns the error: die stays quiet
	killReason  atomic.Pointer[string]
	done        chan struct{}
	dieOnce     sync.Once
	started     time.Time
}

// Start spawns a worker and returns once its handshake completed. ctx bounds the start
// only, not the worker's life.
func Start(ctx context.Context, cfg Config) (*Worker, error) {
	if err := supported(); err != nil { // Windows: refused before looking for an interpreter
		return nil, err
	}
	cfg = cfg.withDefaults()
	args := cfg.Args
	if len(args) == 0 {
		if cfg.Bridge == "" {
			return nil, fmt.Errorf("%w: no bridge class (module:Class) configured", errs.ErrInvalidConfiguration)
		}
		args = workerArgs(cfg)
	}
	cmd, err := Command(context.Background(), cfg, args...)
	if err != nil {
		return nil, err
	}
	python := cmd.Path
	maxFrame := cfg.MaxFrame
	if maxFrame <= 0 {
		maxFrame = wire.DefaultMaxFrame
	}

	var proc *process
	if cfg.Zygote != nil {
		proc, err = cfg.Zygote.spawn()
	} else {
		proc, err = spawn(cmd)
	}
	if err != nil {
		return nil, fmt.Errorf("mlbridge: start %s: %w", python, err)
	}
	w := &Worker{
		cfg:      cfg,
		proc:     proc,
		fr:       wire.NewFrameReader(proc.stdout, maxFrame),
		maxFrame: maxFrame,
		bw:       bufio.NewWriterSize(proc.stdin, 64<<10),
		pending:  map[uint64]*Call{},
		stderr:   newStderrTail(cfg.StderrLines),
		done:     make(chan struct{}),
		started:  time.Now(),

		unresponsive: make(chan struct{}),
	}
	// The caller's logger names the bridge (a pool or registry adds bridge=<name>); the
	// worker adds only what it alone knows, so no attribute appears twice.
	w.log = cfg.Logger.With("worker_pid", proc.pid())
	go w.stderr.run(proc.stderr, w.log)
	go w.reapStragglers()

	if err := w.handshake(ctx, uint64(maxFrame)); err != nil {
		w.startFailed = true // the error is returned: die does not log it too
		w.kill("handshake failed")
		w.die("handshake failed")
		return nil, err
	}
	go w.readLoop()
	if cfg.HeartbeatInterval > 0 {
		go w.heartbeat()
	}
	return w, nil
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
	if cfg.IdleSpin > 0 {
		args = append(args, "--spin-us", strconv.FormatInt(cfg.IdleSpin.Microseconds(), 10))
	}
	return args
}

// handshake sends the host hello and waits for the worker's, bounded by ctx and the
// handshake timeout. Until it returns nothing else reads the worker's stdout.
func (w *Worker) handshake(ctx context.Context, maxFrame uint64) error {
	enc := wire.GetEncoder()
	err := w.writeFrame(enc.Hello([]uint64{wire.ProtocolVersion}, maxFrame))
	wire.PutEncoder(enc)
	if err != nil {
		return w.handshakeErr("writing hello", err)
	}
	type result struct {
		m   *wire.Message
		err error
	}
	got := make(chan result, 1)
	go func() {
		payload, err := w.fr.ReadFrame()
		if err != nil {
			got <- result{nil, err}
			return
		}
		m, err := wire.DecodeMessage(payload, wire.WorkerToHost)
		got <- result{m, err}
	}()
	timer := time.NewTimer(w.cfg.HandshakeTimeout)
	defer timer.Stop()
	var r result
	select {
	case r = <-got:
	case <-timer.C:
		return w.handshakeErr(fmt.Sprintf("no hello within %s", w.cfg.HandshakeTimeout), nil)
	case <-ctx.Done():
		return w.handshakeErr("waiting for hello", ctx.Err())
	}
	if r.err != nil {
		return w.handshakeErr("reading hello", r.err)
	}
	m := r.m
	if m.Type != wire.TypeHello {
		return w.handshakeErr(fmt.Sprintf("first frame is %q, not hello", m.Type), nil)
	}
	if m.Error != nil {
		remote := &errs.RemoteError{
			Op: "hello", Category: m.Error.Category, Type: m.Error.Type,
			Message: m.Error.Message, Traceback: m.Error.Traceback,
		}
		// The worker sent its traceback here instead of printing it: the returned error is
		// where the user sees it, once.
		if tb := strings.TrimRight(remote.Traceback, "\n"); tb != "" {
			return fmt.Errorf("%w: %w\n%s", errs.ErrHandshake, remote, tb)
		}
		return fmt.Errorf("%w: %w", errs.ErrHandshake, remote)
	}
	if m.Version != wire.ProtocolVersion {
		return w.handshakeErr(fmt.Sprintf("worker chose protocol version %d, host speaks %d", m.Version, wire.ProtocolVersion), nil)
	}
	w.hello = Hello{
		Version: m.Version, Pid: int(m.Pid), Framework: m.Framework,
		Capabilities: m.Capabilities, Handlers: m.Handlers, MaxFrame: m.MaxFrame, Runtime: m.Runtime,
	}
	return nil
}

// handshakeErr explains a failed start. If the process already exited, its exit status and
// stderr say more than the symptom; a missing runtime dependency gets its own sentinel
// and the command that installs it.
func (w *Worker) handshakeErr(what string, cause error) error {
	select {
	case <-w.proc.exited:
	case <-time.After(200 * time.Millisecond):
	}
	select {
	case <-w.proc.exited:
		select {
		case <-w.stderr.done:
		case <-time.After(time.Second):
		}
		exit := w.exitError(what)
		if err := missingPackage(w.cmdPython(), exit.Stderr, exit); err != nil {
			return err
		}
		return fmt.Errorf("%w: %w", errs.ErrHandshake, exit)
	default:
	}
	tail := ""
	if lines := w.stderr.last(); len(lines) > 0 {
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

func (w *Worker) cmdPython() string { return w.proc.path }

// Info returns the worker's handshake.
func (w *Worker) Info() Hello { return w.hello }

// Pid is the Python process id.
func (w *Worker) Pid() int { return w.proc.pid() }

// Done is closed once the worker is dead; its pending calls fail right after.
func (w *Worker) Done() <-chan struct{} { return w.done }

// Err returns why the worker died (an *errs.ExitError inside), or nil while it runs.
func (w *Worker) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.deathErr
}

// InFlight is the number of calls sent and not yet answered.
func (w *Worker) InFlight() int { return int(w.inFlight.Load()) }

// StartedAt is when the process was spawned.
func (w *Worker) StartedAt() time.Time { return w.started }

func (w *Worker) writeFrame(b []byte) error {
	w.writers.Add(1)
	w.wmu.Lock()
	_, err := w.bw.Write(b)
	if w.writers.Add(-1) == 0 && err == nil {
		err = w.bw.Flush()
	}
	w.wmu.Unlock()
	return err
}

func (w *Worker) readLoop() {
	for {
		payload, err := w.fr.ReadFrame()
		if err != nil {
			var pe *wire.ProtocolError
			if errors.As(err, &pe) {
				w.kill("protocol error: " + pe.Error())
			}
			w.die("stdout closed")
			return
		}
		w.frames.Add(1)
		m, err := wire.DecodeMessage(payload, wire.WorkerToHost)
		if err != nil {
			w.badMessage(m, err)
			continue
		}
		w.dispatch(m)
	}
}

func (w *Worker) dispatch(m *wire.Message) {
	switch m.Type {
	case wire.TypeRes:
		if c := w.take(m.ID); c != nil {
			if m.OK {
				c.finish(m.Result, nil)
			} else {
				c.finish(nil, &errs.RemoteError{
					Op: c.op, Category: m.Error.Category, Type: m.Error.Type,
					Message: m.Error.Message, Traceback: m.Error.Traceback,
				})
			}
		}
	case wire.TypeChunk:
		if c := w.lookup(m.ID); c != nil {
			c.push(m.Data)
		}
	case wire.TypeEnd:
		if c := w.take(m.ID); c != nil {
			c.finish(nil, nil)
		}
	case wire.TypePing:
		enc := wire.GetEncoder()
		_ = w.writeFrame(enc.Pong(m.Seq))
		wire.PutEncoder(enc)
	case wire.TypePong:
		// Liveness is counted for every frame in readLoop.
	default:
		w.log.Warn("mlbridge: unexpected message from worker", "type", m.Type)
	}
}

// badMessage handles a frame that decoded but broke the schema: the stream is still in
// sync, so only the call it names (if any) fails.
func (w *Worker) badMessage(m *wire.Message, err error) {
	var pe *wire.ProtocolError
	if errors.As(err, &pe) && pe.StreamBroken() {
		w.kill("protocol error: " + err.Error())
		return
	}
	w.log.Warn("mlbridge: invalid message from worker", "err", err)
	if m != nil && m.ID != 0 {
		if c := w.take(m.ID); c != nil {
			c.finish(nil, fmt.Errorf("%w: %w", errs.ErrProtocol, err))
		}
	}
}

// kill stops the process group at once; the read loop then sees EOF and fails every
// pending call with an ExitError carrying reason.
func (w *Worker) kill(reason string) {
	w.killReason.CompareAndSwap(nil, &reason)
	w.proc.signalGroup(syscall.SIGKILL)
}

// Kill stops the worker at once (used by supervisors and tests).
func (w *Worker) Kill(reason string) { w.kill(reason) }

// reapStragglers makes sure that when the worker process ends, nothing of its group
// outlives it and a pipe held open by a grandchild cannot keep the read loop waiting.
func (w *Worker) reapStragglers() {
	<-w.proc.exited
	w.proc.signalGroup(syscall.SIGKILL)
	select {
	case <-w.done:
	case <-time.After(time.Second):
		_ = w.proc.stdout.Close()
	}
}

// die runs once, after the read loop ended: it waits for the process to be gone, then
// fails every pending call with the reason.
func (w *Worker) die(symptom string) {
	w.dieOnce.Do(func() {
		select {
		case <-w.proc.exited:
		case <-time.After(w.cfg.KillDelay):
			w.kill("stdout closed but the process did not exit")
			<-w.proc.exited
		}
		select {
		case <-w.stderr.done:
		case <-time.After(time.Second):
		}
		exit := w.exitError(symptom)
		var err error = exit
		w.mu.Lock()
		if w.closing {
			err = fmt.Errorf("%w: %w", errs.ErrClosed, exit)
		}
		w.deathErr = err
		pending := w.pending
		w.pending = nil
		closing := w.closing
		w.mu.Unlock()
		closeAll(w.proc.stdin, w.proc.stdout, w.proc.stderr)
		// Done closes right after pending is gone and before the pending calls fail, so that a
		// caller woken by its failed call already sees the worker as dead: a pool must not
		// place the next call here (between the two, Send fails at once — a slow log handler
		// there let a pool spin its callers on a dead worker).
		close(w.done)
		for _, c := range pending {
			c.finish(nil, err)
		}
		if !closing && !w.startFailed {
			w.log.Warn("mlbridge: worker exited", "err", exit)
		}
	})
}

func (w *Worker) exitError(symptom string) *errs.ExitError {
	code, sig := w.proc.exitStatus()
	reason := symptom
	if r := w.killReason.Load(); r != nil {
		reason = *r
	}
	return &errs.ExitError{Pid: w.proc.pid(), ExitCode: code, Signal: sig, Reason: reason, Stderr: w.stderr.last()}
}

// heartbeat pings the worker every HeartbeatInterval. Silence is counted from the first
// ping written after the worker's last frame — not from the host's own ticks, so a host that
// was paused (SIGSTOP, a frozen VM) blames no worker. Past LivenessTimeout the worker is
// marked unresponsive; past HeartbeatTimeout it is killed. Both wait longer while the worker
// decodes a large request (busyUntil). Pings are written off this goroutine: a worker that
// stopped reading fills the pipe, and a blocked write must not stop the detection.
func (w *Worker) heartbeat() {
	interval, live, hard := w.cfg.HeartbeatInterval, w.cfg.LivenessTimeout, w.cfg.HeartbeatTimeout
	step := interval
	if live > 0 {
		step = min(step, max(live/10, time.Millisecond))
	}
	t := time.NewTicker(step)
	defer t.Stop()
	var seq, lastFrames uint64
	var writing atomic.Bool
	var unansweredAt atomic.Int64 // unix ns of the first ping written since the last frame; 0: none
	var lastPing time.Time
	for {
		select {
		case <-w.done:
			return
		case now := <-t.C:
			if f := w.frames.Load(); f != lastFrames {
				lastFrames = f
				unansweredAt.Store(0)
			} else if at := unansweredAt.Load(); at != 0 && now.UnixNano() >= w.busyUntil.Load() {
				silent := now.Sub(time.Unix(0, at))
				if silent >= hard && !w.isClosing() {
					w.kill(fmt.Sprintf("heartbeat timeout: no answer to a liveness ping for %s "+
						"(event loop wedged: a C call holding the GIL, or a blocking call in an async def?)",
						silent.Round(time.Millisecond)))
					return
				}
				if live > 0 && silent >= live {
					w.markUnresponsive(silent)
				}
			}
			if now.Sub(lastPing) < interval || !writing.CompareAndSwap(false, true) {
				continue // not yet time, or the last ping still waits for room in the pipe
			}
			lastPing = now
			seq++
			go func(seq uint64) {
				defer writing.Store(false)
				enc := wire.GetEncoder()
				err := w.writeFrame(enc.Ping(seq))
				wire.PutEncoder(enc)
				if err == nil {
					unansweredAt.CompareAndSwap(0, time.Now().UnixNano())
				}
			}(seq)
		}
	}
}

// markUnresponsive closes Unresponsive once.
func (w *Worker) markUnresponsive(silent time.Duration) {
	w.unresponsiveOnce.Do(func() {
		w.log.Warn("mlbridge: worker unresponsive: no answer to a liveness ping "+
			"(event loop wedged: a C call holding the GIL, or a blocking call in an async def?)",
			"for", silent.Round(time.Millisecond))
		close(w.unresponsive)
	})
}

// Unresponsive is closed once the worker left a liveness ping unanswered for
// LivenessTimeout. It may still answer later; a supervisor replaces it anyway.
func (w *Worker) Unresponsive() <-chan struct{} { return w.unresponsive }

// expectBusy extends the liveness allowance while the worker decodes a frame of n bytes:
// decoding holds its event loop (records decode at ~20 MB/s; 8 MB/s is assumed).
func (w *Worker) expectBusy(n int) {
	if n < 1<<20 {
		return
	}
	until := time.Now().Add(time.Duration(n) * time.Second / (8 << 20)).UnixNano()
	for {
		cur := w.busyUntil.Load()
		if cur >= until || w.busyUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// isClosing: Shutdown started; its own escalation (grace, SIGTERM, SIGKILL) takes over.
func (w *Worker) isClosing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closing
}

// Shutdown stops the worker gracefully: a shutdown frame lets in-flight calls finish for
// the grace period, then SIGTERM, then SIGKILL to the process group. New calls fail with
// ErrClosed at once. It returns when the process is gone, or early with ctx's error (the
// escalation still completes in the background).
func (w *Worker) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	already := w.closing
	w.closing = true
	w.mu.Unlock()
	if !already {
		go w.stop()
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Worker) stop() {
	grace := w.cfg.ShutdownGrace
	enc := wire.GetEncoder()
	_ = w.writeFrame(enc.Shutdown(uint64(grace.Milliseconds())))
	wire.PutEncoder(enc)
	steps := []struct {
		wait time.Duration
		sig  syscall.Signal
	}{
		{grace + time.Second, syscall.SIGTERM},
		{w.cfg.KillDelay, syscall.SIGKILL},
	}
	for _, s := range steps {
		select {
		case <-w.proc.exited:
			return
		case <-time.After(s.wait):
			w.log.Warn("mlbridge: worker did not exit in time, signalling", "signal", s.sig.String())
			w.proc.signalGroup(s.sig)
		}
	}
}
