package fakeworker

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge/internal/wire"
	"github.com/mlbridge/mlbridge/internal/worker"
)

// Worker is one launched fake worker: the protocol's worker side and its worker.Process.
type Worker struct {
	pid      int
	cfg      worker.Config
	behavior Behavior
	in       *io.PipeReader // frames from the host
	out      *io.PipeWriter // frames to the host
	frames   chan outFrame  // to the writer goroutine: the reader never blocks on the host
	wedged   atomic.Bool

	mu       sync.Mutex
	calls    map[uint64]context.CancelFunc // in flight, by id
	hres     map[uint64]chan *wire.Message // host calls waiting for their answer, by id
	closing  bool
	stderr   []string
	inflight sync.WaitGroup
	ops      map[string]int // requests begun, by op

	exitOnce sync.Once
	exited   chan struct{}
	code     int
	signal   string
}

// Started is the number of requests for op the fake has begun.
func (w *Worker) Started(op string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ops[op]
}

var handlers = map[string]string{
	"echo": "async", "sleep": "async", "hang": "async", "fail": "async", "stream": "async_gen",
	"exit": "sync", "health_check": "async", "hcall": "async",
}

func (w *Worker) serve() {
	fr := wire.NewFrameReader(w.in, wire.DefaultMaxFrame)
	b := w.behavior
	if b.ExitBeforeHello {
		w.exit(b.ExitCode, "")
		return
	}
	if _, err := fr.ReadFrame(); err != nil {
		w.exit(1, "")
		return
	}
	if b.SilentHello {
		for { // reads on, answers nothing
			if _, err := fr.ReadFrame(); err != nil {
				w.exit(0, "")
				return
			}
		}
	}
	if b.HelloError != "" {
		w.send(map[string]any{"t": "hello", "error": map[string]any{
			"category": "invalid_configuration", "type": "ImportError", "message": b.HelloError}})
		w.flushThenExit(1)
		return
	}
	hello := map[string]any{
		"t": "hello", "version": wire.ProtocolVersion, "pid": w.pid,
		"framework":    map[string]any{"name": "fake", "version": "0"},
		"capabilities": []string{}, "handlers": handlers,
	}
	if b.Capacity > 0 {
		hello["runtime"] = map[string]any{"capacity": b.Capacity}
	}
	if b.BatchEcho > 0 {
		hello["batched"] = map[string]any{"echo": map[string]any{"max_size": b.BatchEcho, "max_wait_ms": 5}}
	}
	w.send(hello)
	for {
		payload, err := fr.ReadFrame()
		if err != nil {
			w.shutdown(0) // stdin EOF: the worker exits
			return
		}
		m, err := wire.DecodeMessage(payload, wire.HostToWorker)
		if err != nil {
			continue
		}
		switch m.Type {
		case wire.TypeReq:
			w.start(m)
		case wire.TypeBReq:
			w.answerBatch(m, b.BatchReply)
		case wire.TypeCancel:
			w.mu.Lock()
			cancel := w.calls[m.ID]
			w.mu.Unlock()
			if cancel != nil {
				cancel()
			}
		case wire.TypeHRes:
			w.mu.Lock()
			ch := w.hres[m.ID]
			delete(w.hres, m.ID)
			w.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		case wire.TypePing:
			w.send(map[string]any{"t": "pong", "seq": m.Seq})
		case wire.TypeShutdown:
			go w.shutdown(time.Duration(m.Grace) * time.Millisecond)
		}
	}
}

// shutdown refuses new requests, lets those in flight finish within grace, then exits 0.
func (w *Worker) shutdown(grace time.Duration) {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	idle := make(chan struct{})
	go func() { w.inflight.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(grace):
	case <-w.exited:
	}
	w.flushThenExit(0)
}

// outFrame is a frame for the host, or (flushed set) a marker closed once every frame
// queued before it was written.
type outFrame struct {
	b       []byte
	flushed chan struct{}
}

// flushThenExit lets queued frames reach the host (up to a second), then exits with code.
func (w *Worker) flushThenExit(code int) {
	done := make(chan struct{})
	select {
	case w.frames <- outFrame{flushed: done}:
	case <-w.exited:
	}
	select {
	case <-done:
	case <-time.After(time.Second):
	case <-w.exited:
	}
	w.exit(code, "")
}

func (w *Worker) start(m *wire.Message) {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		w.fail(m.ID, "unavailable", "the worker is shutting down")
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	if m.Deadline > 0 {
		ctx, cancel = context.WithDeadline(ctx, time.UnixMilli(int64(m.Deadline)))
	}
	w.calls[m.ID] = cancel
	w.ops[m.Op]++
	w.inflight.Add(1)
	w.mu.Unlock()
	go func() {
		defer func() {
			w.mu.Lock()
			delete(w.calls, m.ID)
			w.mu.Unlock()
			cancel()
			w.inflight.Done()
		}()
		w.handle(ctx, m)
	}()
}

func (w *Worker) handle(ctx context.Context, m *wire.Message) {
	var args map[string]any
	if len(m.Args) > 0 {
		_ = msgpack.Unmarshal(m.Args, &args)
	}
	switch m.Op {
	case "echo":
		w.ok(m.ID, args)
	case "health_check":
		w.ok(m.ID, map[string]any{"abandoned": 0})
	case "sleep":
		select {
		case <-time.After(time.Duration(num(args["ms"])) * time.Millisecond):
			w.ok(m.ID, "slept")
		case <-ctx.Done():
			w.ctxFail(ctx, m.ID)
		}
	case "hang":
		<-ctx.Done()
		w.ctxFail(ctx, m.ID)
	case "fail":
		w.fail(m.ID, fmt.Sprint(args["category"]), fmt.Sprint(args["message"]))
	case "stream":
		for i := range num(args["n"]) {
			if ctx.Err() != nil {
				w.ctxFail(ctx, m.ID)
				return
			}
			w.send(map[string]any{"t": "chunk", "id": m.ID, "data": i})
		}
		w.send(map[string]any{"t": "end", "id": m.ID})
	case "exit":
		w.Exit(int(num(args["code"])))
	case "hcall":
		w.hostCall(ctx, m.ID, args)
	default:
		w.fail(m.ID, "not_found", fmt.Sprintf("no handler for op %q", m.Op))
	}
}

func (w *Worker) ctxFail(ctx context.Context, id uint64) {
	if ctx.Err() == context.DeadlineExceeded {
		w.fail(id, "timeout", "deadline exceeded")
		return
	}
	w.fail(id, "cancelled", "cancelled")
}

func (w *Worker) ok(id uint64, result any) {
	w.send(map[string]any{"t": "res", "id": id, "ok": true, "result": result})
}

func (w *Worker) fail(id uint64, category, message string) {
	w.send(map[string]any{"t": "res", "id": id, "ok": false,
		"error": map[string]any{"category": category, "type": "FakeError", "message": message}})
}

// send queues one message for the host; a wedged or dead fake writes nothing.
func (w *Worker) send(m map[string]any) {
	if w.wedged.Load() {
		return
	}
	body, err := msgpack.Marshal(m)
	if err != nil {
		panic(err) // a bug in this package
	}
	frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	select {
	case w.frames <- outFrame{b: append(frame, body...)}:
	case <-w.exited:
	}
}

// write is the fake's only writer to the host.
func (w *Worker) write() {
	for {
		select {
		case f := <-w.frames:
			if f.flushed != nil {
				close(f.flushed)
				continue
			}
			if w.wedged.Load() {
				continue
			}
			if _, err := w.out.Write(f.b); err != nil {
				return
			}
		case <-w.exited:
			return
		}
	}
}

func num(v any) int64 {
	switch n := v.(type) {
	case int8:
		return int64(n)
	case int16:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	case uint8:
		return int64(n)
	case uint16:
		return int64(n)
	case uint32:
		return int64(n)
	case uint64:
		return int64(n)
	case int:
		return int64(n)
	case float64:
		return int64(n)
	}
	return 0
}

// hostCall makes one host call for request id and answers the request with the host's answer
// ({ok, result} or {ok, category, type}). Its own id is the request's (the two id spaces are
// apart); "fn" is sent as given, so a test can break the schema (a number).
func (w *Worker) hostCall(ctx context.Context, id uint64, args map[string]any) {
	ch := make(chan *wire.Message, 1)
	w.mu.Lock()
	if w.hres == nil {
		w.hres = map[uint64]chan *wire.Message{}
	}
	w.hres[id] = ch
	w.mu.Unlock()
	w.send(map[string]any{"t": "hcall", "id": id, "fn": args["fn"], "args": args["args"], "parent": id})
	select {
	case r := <-ch:
		if r.OK {
			v, _ := wire.DecodeValue(r.Result)
			w.ok(id, map[string]any{"ok": true, "result": v})
			return
		}
		w.ok(id, map[string]any{"ok": false, "category": r.Error.Category, "type": r.Error.Type, "message": r.Error.Message})
	case <-ctx.Done():
		w.ctxFail(ctx, id)
	}
}

// answerBatch answers a breq for echo: each item's args back, or the scripted fault.
func (w *Worker) answerBatch(m *wire.Message, reply string) {
	w.mu.Lock()
	w.ops[m.Op] += len(m.Items)
	w.mu.Unlock()
	if reply == "res_ok" {
		w.ok(m.ID, nil)
		return
	}
	results := make([]any, 0, len(m.Items))
	for _, it := range m.Items {
		var args map[string]any
		_ = msgpack.Unmarshal(it, &args)
		results = append(results, map[string]any{"ok": true, "result": args})
	}
	if reply == "short" {
		results = results[:len(results)-1]
	}
	w.send(map[string]any{"t": "bres", "id": m.ID, "results": results})
}
