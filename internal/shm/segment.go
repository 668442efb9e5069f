//go:build unix

package shm

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Supported says whether this system can share segments with a worker.
const Supported = true

// Segment is a shared-memory file mapped read-write into this process. Its methods are safe
// for concurrent use; Close is idempotent.
type Segment struct {
	mu   sync.Mutex
	file *os.File // nil for a received segment (its descriptor is closed once mapped)
	mem  []byte   // the whole mapping; nil once closed
}

// Create makes a segment of size bytes (size > 0), zero-filled, mapped read-write.
func Create(size int) (*Segment, error) {
	if size <= 0 {
		return nil, fmt.Errorf("shm: segment size %d", size)
	}
	f, err := newFile()
	if err != nil {
		return nil, fmt.Errorf("shm: create segment: %w", err)
	}
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return nil, fmt.Errorf("shm: size segment: %w", err)
	}
	mem, err := mapFile(f, size)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Segment{file: f, mem: mem}, nil
}

// Open maps a received segment file and closes f: the mapping alone keeps the memory alive.
func Open(f *os.File) (*Segment, error) {
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("shm: stat received segment: %w", err)
	}
	if st.Size() <= 0 || st.Size() > int64(^uint(0)>>1) {
		return nil, fmt.Errorf("shm: received segment of %d bytes", st.Size())
	}
	mem, err := mapFile(f, int(st.Size()))
	if err != nil {
		return nil, err
	}
	return &Segment{mem: mem}, nil
}

func mapFile(f *os.File, size int) ([]byte, error) {
	p, err := unix.MmapPtr(int(f.Fd()), 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shm: map segment of %d bytes: %w", size, err)
	}
	return unsafe.Slice((*byte)(p), size), nil
}

// Bytes is the mapping; it must not be used after Close.
func (s *Segment) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mem
}

// File is the segment's descriptor, for sending (nil for a received segment).
func (s *Segment) File() *os.File { return s.file }

// ErrClosed is returned for a segment used after Close.
var ErrClosed = errors.New("shm: segment closed")

// CopyOut copies n bytes at off into dst (reusing its capacity when it is large enough) and,
// where the system can, frees the segment's memory behind the copy as it goes, so copying a
// large result out never holds it twice (see release_linux.go).
func (s *Segment) CopyOut(off, n int, dst []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mem == nil {
		return nil, ErrClosed
	}
	if off < 0 || n < 0 || off > len(s.mem) || n > len(s.mem)-off {
		return nil, fmt.Errorf("shm: range [%d, +%d) outside a %d-byte segment", off, n, len(s.mem))
	}
	if cap(dst) >= n {
		dst = dst[:n]
	} else {
		dst = make([]byte, n)
	}
	const chunk = 4 << 20
	for done := 0; done < n; done += chunk {
		end := min(done+chunk, n)
		copy(dst[done:end], s.mem[off+done:off+end])
		release(s.mem, off+done, off+end)
	}
	return dst, nil
}

// Close unmaps the segment and closes its descriptor.
func (s *Segment) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.mem != nil {
		err = unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(s.mem)), uintptr(len(s.mem)))
		s.mem = nil
	}
	if s.file != nil {
		err = errors.Join(err, s.file.Close())
		s.file = nil
	}
	return err
}
