package worker

import (
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/mlbridge/mlbridge/internal/errs"
	"github.com/mlbridge/mlbridge/internal/shm"
	"github.com/mlbridge/mlbridge/internal/wire"
)

// Shared memory for large arrays (internal/shm; spec/protocol.md, "Shared memory"): a request's
// array data of at least SharedMemoryMin bytes is placed in a segment whose descriptor is sent
// on the worker's segment channel right before the frame; an answer's segments are received
// when its frame is read, and belong to its Result until copied out.

// capShared is the capability a worker announces when it has a segment channel.
const capShared = "shm"

// MaxSegmentsPerFrame caps the segments one frame may refer to; the arrays past it travel inline
// in the frame (subject to MaxFrame). Why: a frame's segments are all queued on the channel
// before the frame, and the peer drains the channel only when it decodes that frame, so they
// must fit in the socket's buffer at once, or the sender blocks for ever while holding the
// write lock. Linux's default buffer (212,992 bytes) holds 278 one-descriptor messages, and
// macOS's buffers are far smaller (8 KiB by default); 32 leaves room for the segments of a
// few frames queued behind each other. The worker applies the same cap (shm.py).
const MaxSegmentsPerFrame = 32

// sendTimeout bounds one segment send: a worker whose loop does not drain the channel (wedged,
// or breaking the order) must not hold the write lock — and the heartbeat and cancels behind
// it — for ever. With the cap above a send only waits while the worker decodes earlier frames.
const sendTimeout = 10 * time.Second

// receiveTimeout bounds the wait for a segment the worker named in a frame: it sent it before
// the frame, so it is queued already unless the worker broke the protocol.
const receiveTimeout = 5 * time.Second

// adoptShared decides, after the handshake, whether this session uses the channel.
func (s *session) adoptShared(ch *shm.Channel) {
	if ch == nil {
		return
	}
	if slices.Contains(s.hello.Capabilities, capShared) {
		s.shm = ch
		s.shmMin = s.cfg.sharedMemoryMin()
	}
}

// SharedMemory reports whether large arrays travel through shared memory on this worker.
func (s *session) SharedMemory() bool { return s.shm != nil }

// outbox collects the segments one request's arguments placed; it is the request encoder's
// wire.SharedSink.
type outbox struct {
	s    *session
	segs []placed
}

type placed struct {
	id     uint64
	seg    *shm.Segment
	length int
	owned  bool // created for this request (closed once sent); else the caller's SharedArray
}

func (o *outbox) PlaceBytes(data []byte, owner any) (wire.SharedRef, bool, error) {
	if len(data) < o.s.shmMin || len(o.segs) >= MaxSegmentsPerFrame {
		return wire.SharedRef{}, false, nil // inline: see MaxSegmentsPerFrame
	}
	id := o.s.nextSeg.Add(1)
	if seg, ok := owner.(*shm.Segment); ok {
		if off, ok := offsetIn(seg.Bytes(), data); ok {
			o.segs = append(o.segs, placed{id: id, seg: seg, length: len(data)})
			return wire.SharedRef{ID: id, Offset: uint64(off), Length: uint64(len(data))}, true, nil
		}
	}
	seg, err := shm.Create(len(data))
	if err != nil {
		return wire.SharedRef{}, false, err
	}
	copy(seg.Bytes(), data)
	o.segs = append(o.segs, placed{id: id, seg: seg, length: len(data), owned: true})
	return wire.SharedRef{ID: id, Length: uint64(len(data))}, true, nil
}

// offsetIn is where data starts inside mem, if it lies wholly inside it.
func offsetIn(mem, data []byte) (int, bool) {
	if len(mem) == 0 || len(data) == 0 {
		return 0, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	if p < base || p-base > uintptr(len(mem)-len(data)) {
		return 0, false
	}
	return int(p - base), true
}

// send passes every segment to the worker; it runs under the write lock, right before the
// frame's bytes, so the worker finds each segment queued when it reads the frame.
//
// Every descriptor is checked before the first is sent (a SharedArray closed meanwhile fails
// only its call, with nothing sent); a send that fails after that leaves the channel out of step
// with the frames (the worker would stash what was sent for ever), so it is a *channelError: the
// worker is lost.
func (o *outbox) send() error {
	for _, p := range o.segs {
		if p.seg.File() == nil {
			return fmt.Errorf("shm: segment %d has no descriptor (a SharedArray closed while in use?)", p.id)
		}
	}
	for _, p := range o.segs {
		if err := o.s.shm.Send(p.id, p.seg.File(), sendTimeout); err != nil {
			return &channelError{err}
		}
	}
	return nil
}

// channelError: a segment send failed; the channel can no longer be trusted.
type channelError struct{ err error }

func (e *channelError) Error() string { return e.err.Error() }
func (e *channelError) Unwrap() error { return e.err }

// busyBytes is what the request's segments weigh for liveness (expectBusy assumes bytes
// decoded at ~8 MB/s): the worker's loop maps them pre-faulted and, for a result as large,
// fills a fresh segment, about 64 times faster per byte than decoding — but not free: a 1 GiB
// array holds the loop for a second or two, which must not read as a wedged worker.
func (o *outbox) busyBytes() int {
	if o == nil {
		return 0
	}
	n := 0
	for _, p := range o.segs {
		n += p.length
	}
	return n / 64
}

// done drops the host's hold on the segments it created: the worker holds its own (or, if
// they were never sent, nobody does and they are freed now).
func (o *outbox) done() {
	if o == nil {
		return
	}
	for _, p := range o.segs {
		if p.owned {
			_ = p.seg.Close()
		}
	}
	o.segs = nil
}

// receiveShared takes the segments an answer names from the channel and maps them.
func (s *session) receiveShared(ids []uint64) (*shm.Received, error) {
	ch := s.shm
	if ch == nil {
		ch = s.shmConn
	}
	if ch == nil {
		return nil, fmt.Errorf("%w: the worker sent shared segments %v without a segment channel", errs.ErrProtocol, ids)
	}
	segs := make(map[uint64]*shm.Segment, len(ids))
	var firstErr error
	for _, id := range ids {
		f, err := ch.Receive(id, receiveTimeout)
		if err == nil {
			var seg *shm.Segment
			if seg, err = shm.Open(f); err == nil {
				segs[id] = seg
				continue
			}
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	r := shm.NewReceived(segs)
	if firstErr != nil {
		r.Close()
		return nil, fmt.Errorf("%w: %w", errs.ErrProtocol, firstErr)
	}
	return r, nil
}
