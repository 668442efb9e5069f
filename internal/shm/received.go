package shm

import (
	"fmt"
	"runtime"
	"sync"
)

// Received holds the segments one answer referred to, by id, until their bytes are copied
// out. The first copy of a range reads the segment into a private buffer owned by the Received
// and closes the segment; every copy (the first too) is then made from that buffer into the
// caller's memory. So a Received is a value: what it returns never changes, whatever the
// caller later does with a buffer it got (or passes in again for another Result). Whatever is
// never copied out is unmapped when the Received becomes unreachable, or by Close.
//
// Why a copy and not an Array aliasing the mapping: Go's collector does not see memory it did
// not allocate, so a []byte into a mapping cannot keep the mapping alive. Unmapping it from a
// cleanup of some owner object would leave any slice the user kept of Data pointing at
// unmapped memory (a crash, or someone else's data once the range is reused). Why not keep the
// segment mapped and read it again at each copy: the collector does not see that memory either,
// so Results dropped after one Decode would pile segments up between two collections.
type Received struct {
	st *receivedState
}

type receivedState struct {
	mu   sync.Mutex
	segs map[uint64]*Segment
	// copied: ranges read out of their segment; whole: segments read out whole at arrival
	// (Snapshot)
	copied map[rangeKey][]byte
	whole  map[uint64][]byte
}

type rangeKey struct{ id, off, n uint64 }

// NewReceived takes ownership of segs.
func NewReceived(segs map[uint64]*Segment) *Received {
	st := &receivedState{segs: segs, copied: map[rangeKey][]byte{}}
	r := &Received{st: st}
	runtime.AddCleanup(r, func(st *receivedState) { st.close() }, st)
	return r
}

// Snapshot reads segment id out whole now and closes it: for a segment someone else may still
// write into (a caller's SharedArray the worker sent back as it was), whose bytes must be the
// ones of the answer's arrival.
func (r *Received) Snapshot(id uint64) error {
	st := r.st
	st.mu.Lock()
	defer st.mu.Unlock()
	seg := st.segs[id]
	if seg == nil {
		return fmt.Errorf("shm: no segment %d to snapshot", id)
	}
	b, err := seg.CopyOut(0, seg.Size(), nil)
	if err != nil {
		return err
	}
	if st.whole == nil {
		st.whole = map[uint64][]byte{}
	}
	st.whole[id] = b
	delete(st.segs, id)
	_ = seg.Close()
	return nil
}

// CopyOut returns the n bytes at off of segment id, in dst's memory when its capacity suffices.
func (r *Received) CopyOut(id, off, n uint64, dst []byte) ([]byte, error) {
	b, err := r.private(id, off, n)
	if err != nil {
		return nil, err
	}
	if cap(dst) >= len(b) {
		dst = dst[:len(b)]
	} else {
		dst = make([]byte, len(b))
	}
	copy(dst, b)
	return dst, nil
}

// private is the Received's own copy of the range (never handed out).
func (r *Received) private(id, off, n uint64) ([]byte, error) {
	st := r.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if off > uint64(maxInt) || n > uint64(maxInt) {
		return nil, fmt.Errorf("shm: range [%d, +%d) of segment %d", off, n, id)
	}
	if w, ok := st.whole[id]; ok {
		if off > uint64(len(w)) || n > uint64(len(w))-off {
			return nil, fmt.Errorf("shm: range [%d, +%d) outside segment %d of %d bytes", off, n, id, len(w))
		}
		return w[off : off+n], nil
	}
	key := rangeKey{id, off, n}
	if b, ok := st.copied[key]; ok {
		return b, nil
	}
	seg := st.segs[id]
	if seg == nil {
		return nil, fmt.Errorf("shm: the answer names segment %d, which it did not carry", id)
	}
	b, err := seg.CopyOut(int(off), int(n), nil)
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
