package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/shm"
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
	// Batched: the ops the bridge serves in batches (spec/protocol.md, "Batches"), with the
	// size and wait it declared. A declaration that does not decode is ignored (logged): the
	// op is then served call by call, which every worker accepts.
	Batched map[string]wire.BatchSpec
}

// peer is the far end of a session as the session needs it, implemented by whoever owns
// the streams (a Worker, over its Process): the session knows nothing of processes.
type peer interface {
	// kill cuts the far end off at once (protocol error, heartbeat timeout); the read loop
	// then sees EOF.
	kill(reason string)
	// ended waits until the far end is gone and says why (an *errs.ExitError).
	ended(symptom string) *errs.ExitError
	// startError explains a failed handshake.
	startError(what string, cause error) error
	// stop runs the stop policy after the shutdown frame was written.
	stop()
}

// session speaks the mlbridge protocol over a byte stream: handshake, one read loop routing
// answers by id, pending calls, cancel, streams (call.go), liveness pings, the shutdown frame,
// and death, which fails every pending call with the reason its peer reports.
type session struct {
	cfg   Config
	log   *slog.Logger
	peer  peer
	hello Hello
	fr    *wire.FrameReader
	// maxFrame bounds frames both ways; larger requests are refused before sending.
	maxFrame int
	release  func() // closes both streams, once the session died

	// Writes: senders append under wmu; the last one waiting flushes, so concurrent
	// senders share one write syscall without a dedicated writer goroutine.
	wmu     sync.Mutex
	bw      *bufio.Writer
	writers atomic.Int32

	mu       sync.Mutex
	pending  map[uint64]*Call
	hcalls   map[uint64]hostCallEntry // host calls running, by the worker's id (hostcall.go)
	closing  bool
	deathErr error
	lost     []trace.SpanContext // the traced calls in flight at its death (LostCalls)

	nextID atomic.Uint64
	frames atomic.Uint64 // frames received: the heartbeat's liveness signal
	// busyUntil (unix ns): no liveness verdict before it (a large request is being decoded)
	busyUntil        atomic.Int64
	unresponsive     chan struct{}
	unresponsiveOnce sync.Once
	inFlight         atomic.Int64

	// Shared memory (shared.go): shm is the segment channel once the worker announced it;
	// shmConn the channel whatever the handshake said (closed when the session dies).
	shm     *shm.Channel
	shmConn *shm.Channel
	shmMin  int
	nextSeg atomic.Uint64

	startFailed bool // set before die when Start returns the error: die stays quiet
	done        chan struct{}
	// ended closes when die has done all it does, its records logged: Shutdown waits for it,
	// so that nothing about the worker is logged after Close returns
	ended   chan struct{}
	dieOnce sync.Once
}

func newSession(cfg Config, log *slog.Logger, r io.Reader, w io.Writer, release func(), p peer) *session {
	maxFrame := cfg.MaxFrame
	if maxFrame <= 0 {
		maxFrame = wire.DefaultMaxFrame
	}
	if release == nil {
		release = func() {}
	}
	return &session{
		cfg: cfg, log: log, peer: p,
		fr:           wire.NewFrameReader(r, maxFrame),
		maxFrame:     maxFrame,
		release:      release,
		bw:           bufio.NewWriterSize(w, 64<<10),
		pending:      map[uint64]*Call{},
		done:         make(chan struct{}),
		ended:        make(chan struct{}),
		unresponsive: make(chan struct{}),
	}
}

// run starts the read loop and the heartbeat, once the handshake succeeded.
func (s *session) run() {
	go s.readLoop()
	if s.cfg.HeartbeatInterval > 0 {
		go s.heartbeat()
	}
}

// handshake sends the host hello and waits for the worker's, bounded by ctx and the
// handshake timeout. Until it returns nothing else reads the worker's frames.
func (s *session) handshake(ctx context.Context) error {
	enc := wire.GetEncoder()
	var funcs msgpack.RawMessage
	if s.cfg.HostFuncs != nil {
		funcs = s.cfg.HostFuncs.Announce()
	}
	err := s.writeFrame(enc.HelloFuncs([]uint64{wire.ProtocolVersion}, uint64(s.maxFrame), funcs))
	wire.PutEncoder(enc)
	if err != nil {
		return s.peer.startError("writing hello", err)
	}
	type result struct {
		m   *wire.Message
		err error
	}
	got := make(chan result, 1)
	go func() {
		payload, err := s.fr.ReadFrame()
		if err != nil {
			got <- result{nil, err}
			return
		}
		m, err := wire.DecodeMessage(payload, wire.WorkerToHost)
		got <- result{m, err}
	}()
	timer := time.NewTimer(s.cfg.HandshakeTimeout)
	defer timer.Stop()
	var r result
	select {
	case r = <-got:
	case <-timer.C:
		return s.peer.startError(fmt.Sprintf("no hello within %s", s.cfg.HandshakeTimeout), nil)
	case <-ctx.Done():
		return s.peer.startError("waiting for hello", ctx.Err())
	}
	if r.err != nil {
		return s.peer.startError("reading hello", r.err)
	}
	m := r.m
	if m.Type != wire.TypeHello {
		return s.peer.startError(fmt.Sprintf("first frame is %q, not hello", m.Type), nil)
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
		return s.peer.startError(fmt.Sprintf("worker chose protocol version %d, host speaks %d", m.Version, wire.ProtocolVersion), nil)
	}
	s.hello = Hello{
		Version: m.Version, Pid: int(m.Pid), Framework: m.Framework,
		Capabilities: m.Capabilities, Handlers: m.Handlers, MaxFrame: m.MaxFrame, Runtime: m.Runtime,
	}
	if len(m.Batched) > 0 {
		if err := msgpack.Unmarshal(m.Batched, &s.hello.Batched); err != nil {
			s.log.Warn("mlbridge: ignoring the worker's batched declaration", "err", err)
			s.hello.Batched = nil
		}
	}
	return nil
}

// Info returns the worker's handshake.
func (s *session) Info() Hello { return s.hello }

// Done is closed once the worker is dead; its pending calls fail right after.
func (s *session) Done() <-chan struct{} { return s.done }

// Err returns why the worker died (an *errs.ExitError inside), or nil while it runs.
func (s *session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deathErr
}

// InFlight is the number of calls sent and not yet answered.
func (s *session) InFlight() int { return int(s.inFlight.Load()) }

func (s *session) writeFrame(b []byte) error { return s.writeFrameAfter(b, nil) }

// writeFrameAfter writes b, running before (if not nil) under the write lock first: a
// request's segments are sent right before its frame.
func (s *session) writeFrameAfter(b []byte, before func() error) error {
	s.writers.Add(1)
	s.wmu.Lock()
	var err error
	if before != nil {
		err = before()
	}
	if err == nil {
		_, err = s.bw.Write(b)
	}
	if s.writers.Add(-1) == 0 && err == nil {
		err = s.bw.Flush()
	}
	s.wmu.Unlock()
	return err
}

func (s *session) readLoop() {
	for {
		payload, err := s.fr.ReadFrame()
		if err != nil {
			var pe *wire.ProtocolError
			if errors.As(err, &pe) {
				s.peer.kill("protocol error: " + pe.Error())
			}
			s.die("stdout closed")
			return
		}
		s.frames.Add(1)
		m, err := wire.DecodeMessage(payload, wire.WorkerToHost)
		if err != nil {
			s.badMessage(m, err)
			continue
		}
		s.dispatch(m)
	}
}

func (s *session) dispatch(m *wire.Message) {
	switch m.Type {
	case wire.TypeRes:
		var shared *shm.Received
		var sharedErr error
		if len(m.Shm) > 0 {
			shared, sharedErr = s.receiveShared(m.Shm)
		}
		if c := s.take(m.ID); c != nil {
			switch {
			case sharedErr != nil:
				c.finish(nil, sharedErr)
			case m.OK && c.batch > 0: // a batch is answered by a bres, or fails whole with a res error
				shared.Close()
				c.finish(nil, fmt.Errorf("%w: op %q: a successful res answered a batch", errs.ErrProtocol, c.op))
			case m.OK:
				if !c.finishShared(m.Result, shared) {
					shared.Close()
				}
			default:
				shared.Close()
				c.finish(nil, &errs.RemoteError{
					Op: c.op, Category: m.Error.Category, Type: m.Error.Type,
					Message: m.Error.Message, Traceback: m.Error.Traceback,
				})
			}
		} else {
			shared.Close() // the call was cancelled: nobody will read them
		}
	case wire.TypeBRes:
		if c := s.take(m.ID); c != nil {
			c.finishBatch(m.Results)
		}
	case wire.TypeChunk:
		if c := s.lookup(m.ID); c != nil {
			c.push(m.Data)
		}
	case wire.TypeEnd:
		if c := s.take(m.ID); c != nil {
			c.finish(nil, nil)
		}
	case wire.TypePing:
		enc := wire.GetEncoder()
		_ = s.writeFrame(enc.Pong(m.Seq))
		wire.PutEncoder(enc)
	case wire.TypePong:
		// Liveness is counted for every frame in readLoop.
	case wire.TypeHCall:
		s.hostCall(m)
	case wire.TypeHCancel:
		s.cancelHostCall(m.ID)
	default:
		s.log.Warn("mlbridge: unexpected message from worker", "type", m.Type)
	}
}

// badMessage handles a frame that decoded but broke the schema: the stream is still in
// sync, so only the call it names (if any) fails.
func (s *session) badMessage(m *wire.Message, err error) {
	var pe *wire.ProtocolError
	if errors.As(err, &pe) && pe.StreamBroken() {
		s.peer.kill("protocol error: " + err.Error())
		return
	}
	s.log.Warn("mlbridge: invalid message from worker", "err", err)
	if m != nil && len(m.Shm) > 0 {
		// its segments were sent before it: take them off the channel (and free them), or the
		// next answer's would be read behind them
		if r, rerr := s.receiveShared(m.Shm); rerr == nil {
			r.Close()
		}
	}
	if m != nil && m.Type == wire.TypeHCall && m.ID != 0 {
		// host call ids are the worker's own: answer that call, never fail a request
		s.answerHost(m.ID, nil, fmt.Errorf("%w: %w", errs.ErrProtocol, err))
		return
	}
	if m != nil && m.ID != 0 && m.Type != wire.TypeHCancel {
		if c := s.take(m.ID); c != nil {
			c.finish(nil, fmt.Errorf("%w: %w", errs.ErrProtocol, err))
		}
	}
}

// die runs once, after the read loop ended: it waits for the peer to be gone, then fails
// every pending call with the reason the peer reports.
func (s *session) die(symptom string) {
	s.dieOnce.Do(func() {
		exit := s.peer.ended(symptom)
		var err error = exit
		s.mu.Lock()
		if s.closing {
			err = fmt.Errorf("%w: %w", errs.ErrClosed, exit)
		}
		s.deathErr = err
		pending := s.pending
		s.pending = nil
		s.lost = lostOf(pending)
		lost := s.lost
		closing := s.closing
		s.mu.Unlock()
		s.release()
		if s.shmConn != nil {
			_ = s.shmConn.Close()
		}
		// Done closes right after pending is gone and before the pending calls fail, so that a
		// caller woken by its failed call already sees the worker as dead: a pool must not
		// place the next call here (between the two, Send fails at once — a slow log handler
		// there let a pool spin its callers on a dead worker).
		close(s.done)
		for _, c := range pending {
			c.finish(nil, err)
		}
		if !closing && !s.startFailed {
			// joined to the traces of the calls it took down
			s.log.LogAttrs(context.Background(), slog.LevelWarn, "mlbridge: worker exited",
				append(LostCallAttrs(lost), slog.Any("err", exit))...)
		}
		close(s.ended)
	})
}

// isClosing: Shutdown started; its own escalation (grace, SIGTERM, SIGKILL) takes over.
func (s *session) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops the worker gracefully: a shutdown frame lets in-flight calls finish for
// the grace period, then the peer's stop policy (for a local process: SIGTERM, then SIGKILL
// to the process group). New calls fail with ErrClosed at once. It returns when the worker
// is gone, or early with ctx's error (the escalation still completes in the background).
func (s *session) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	already := s.closing
	s.closing = true
	s.mu.Unlock()
	if !already {
		go s.stop()
	}
	select {
	case <-s.ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *session) stop() {
	enc := wire.GetEncoder()
	_ = s.writeFrame(enc.Shutdown(uint64(s.cfg.ShutdownGrace.Milliseconds())))
	wire.PutEncoder(enc)
	s.peer.stop()
}
