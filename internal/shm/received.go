package shm

import (
	"fmt"
	"runtime"
	"sync"
)

// Received holds the segments one answer referred to, by id, until their bytes are copied
// out. A segment is copied out once (a window at a time, see Segment.CopyOut) and closed; a
// later copy of the same range reads the bytes of the first. Whatever is never copied out
// is unmapped when the Received becomes unreachable, or by Close.
//
// Why a copy and not an Array aliasing the mapping: Go's collector does not see memory it did
// not allocate, so a []byte into a mapping cannot keep the mapping alive. Unmapping it from a
// cleanup of some owner object would leave any slice the user kept of Data pointing at
// unmapped memory (a crash, or someone else's data once the range is reused). One copy,
// into a buffer the caller may reuse, is the safe floor.
type Received struct {
	st *receivedState
}

type receivedState struct {
	mu     sync.Mutex
	segs   map[uint64]*Segment
	copied map[rangeKey][]byte
}

type rangeKey struct{ id, off, n uint64 }

// NewReceived takes ownership of segs.
func NewReceived(segs map[uint64]*Segment) *Received {
	st := &receivedState{segs: segs, copied: map[rangeKey][]byte{}}
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
	if b, ok := st.copied[key]; ok {
		if cap(dst) >= len(b) {
			dst = dst[:len(b)]
		} else {
			dst = make([]byte, len(b))
		}
		copy(dst, b)
		return dst, nil
	}
	seg := st.segs[id]
	if seg == nil {
		return nil, fmt.Errorf("shm: the answer names segment %d, which it did not carry", id)
	}
	if off > uint64(maxInt) || n > uint64(maxInt) {
		return nil, fmt.Errorf("shm: range [%d, +%d) of segment %d", off, n, id)
	}
	b, err := seg.CopyOut(int(off), int(n), dst)
	if err != nil {
		return nil, err
	}
	st.copied[key] = b
	// One array per segment is what both sides send: the segment is done.
	delete(st.segs, id)
	_ = seg.Close()
	return b, nil
}

// Bytes returns a copy of the n bytes at off of segment id (Result.Raw's inlining).
func (r *Received) Bytes(id, off, n uint64) ([]byte, error) { return r.CopyOut(id, off, n, nil) }

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
