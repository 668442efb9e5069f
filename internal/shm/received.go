package shm

import (
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/mlbridge/mlbridge/internal/errs"
)

// Received holds the segments one answer referred to, by id, until their bytes are copied
// out. Decoding copies a segment straight into the caller's memory (a window at a time, see
// Segment.CopyOut) and closes it: one copy, and the answer's arrays are then the caller's.
// A second decode of the same array is refused (errs.ErrInvalidArgument): the Received keeps
// no copy of its own, and the bytes the first decode wrote belong to the caller, who may have
// changed them or reused the buffer for another result. Inlining (Result.Raw, Value) makes
// a private copy instead, which later decodes and inlinings read. Whatever is never copied out
// is unmapped when the Received becomes unreachable, or by Close.
//
// Why a copy and not an Array aliasing the mapping: Go's collector does not see memory it did
// not allocate, so a []byte into a mapping cannot keep the mapping alive. Unmapping it from a
// cleanup of some owner object would leave any slice the user kept of Data pointing at
// unmapped memory (a crash, or someone else's data once the range is reused). Why not a
// private copy for every decode: it doubles the copies and the memory of the hot path
// (measured: 64 MiB echo 3,000+ -> ~1,000 MB/s, peak memory 2x -> 9-12x the payload).
type Received struct {
	st *receivedState
}

type receivedState struct {
	mu      sync.Mutex
	segs    map[uint64]*Segment
	private map[rangeKey][]byte   // copies made for inlining; never handed out
	decoded map[rangeKey]struct{} // ranges copied straight into a caller's memory
}

type rangeKey struct{ id, off, n uint64 }

// NewReceived takes ownership of segs.
func NewReceived(segs map[uint64]*Segment) *Received {
	st := &receivedState{segs: segs, private: map[rangeKey][]byte{}, decoded: map[rangeKey]struct{}{}}
	r := &Received{st: st}
	runtime.AddCleanup(r, func(st *receivedState) { st.close() }, st)
	return r
}

// CopyOut returns the n bytes at off of segment id, in dst's memory when its capacity suffices.
func (r *Received) CopyOut(id, off, n uint64, dst []byte) ([]byte, error) {
	st := r.st
	st.mu.Lock()
	defer st.mu.Unlock()
	key := rangeKey{id, off, n}
	if b, ok := st.private[key]; ok {
		if cap(dst) >= len(b) {
			dst = dst[:len(b)]
		} else {
			dst = make([]byte, len(b))
		}
		copy(dst, b)
		return dst, nil
	}
	return st.take(key, dst)
}

// Bytes returns a copy of the n bytes at off of segment id (Result.Raw's and Value's
// inlining); the Received keeps one of its own for later reads.
func (r *Received) Bytes(id, off, n uint64) ([]byte, error) {
	st := r.st
	st.mu.Lock()
	defer st.mu.Unlock()
	key := rangeKey{id, off, n}
	b, ok := st.private[key]
	if !ok {
		var err error
		if b, err = st.take(key, nil); err != nil {
			return nil, err
		}
		delete(st.decoded, key)
		st.private[key] = b
	}
	return slices.Clone(b), nil
}

// take copies key's range out of its segment into dst's memory and closes the segment.
func (st *receivedState) take(key rangeKey, dst []byte) ([]byte, error) {
	seg := st.segs[key.id]
	if seg == nil {
		if _, ok := st.decoded[key]; ok {
			return nil, fmt.Errorf("%w: this result's shared array was decoded already; its bytes were copied into the "+
				"Array decoded then (keep that Array, or call Raw first for a result that decodes again)", errs.ErrInvalidArgument)
		}
		return nil, fmt.Errorf("shm: the answer names segment %d, which it did not carry", key.id)
	}
	if key.off > uint64(maxInt) || key.n > uint64(maxInt) {
		return nil, fmt.Errorf("shm: range [%d, +%d) of segment %d", key.off, key.n, key.id)
	}
	b, err := seg.CopyOut(int(key.off), int(key.n), dst)
	if err != nil {
		return nil, err
	}
	st.decoded[key] = struct{}{}
	// One array per segment is what both sides send: the segment is done.
	delete(st.segs, key.id)
	_ = seg.Close()
	return b, nil
}

// Close unmaps every segment not yet copied out (nil: nothing to do).
func (r *Received) Close() {
	if r != nil {
		r.st.close()
	}
}

func (st *receivedState) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, s := range st.segs {
		_ = s.Close()
		delete(st.segs, id)
	}
}

const maxInt = int(^uint(0) >> 1)
